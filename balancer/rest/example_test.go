package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/graylane/graylane/balancer/rest"
)

// userService stands in for a service reached through the balancer.
func userService() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/users/42":
			_, _ = w.Write([]byte(`{"id":"42","name":"Ada"}`))
		case r.Method == http.MethodPost && r.URL.Path == "/users":
			var u struct{ Name string }
			_ = json.NewDecoder(r.Body).Decode(&u)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"id": "43", "name": u.Name})
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"no such user"}`))
		}
	}))
}

func Example() {
	srv := userService()
	defer srv.Close()

	type User struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	// In a service: rest.New("user-service", b.Client()), where b is the
	// *balancer.Balancer. Here a plain client and the test server's URL.
	users := rest.New("user-service", http.DefaultClient, rest.WithBaseURL(srv.URL))
	ctx := context.Background()

	u, err := rest.Get[User](ctx, users, "/users/{id}", rest.Param("id", "42"))
	fmt.Println(u.Name, err)

	created, err := rest.Post[User, User](ctx, users, "/users", User{Name: "Grace"})
	fmt.Println(created.ID, created.Name, err)
	// Output:
	// Ada <nil>
	// 43 Grace <nil>
}

func ExampleStatusError() {
	srv := userService()
	defer srv.Close()
	users := rest.New("user-service", http.DefaultClient, rest.WithBaseURL(srv.URL))

	_, err := rest.Get[map[string]any](context.Background(), users, "/users/{id}", rest.Param("id", "7"))
	var se *rest.StatusError
	if errors.As(err, &se) {
		var body struct{ Message string }
		_ = se.Decode(&body)
		fmt.Println(se.StatusCode, body.Message)
	}
	fmt.Println(strings.Replace(err.Error(), srv.URL, "http://user-service", 1))
	// Output:
	// 404 no such user
	// rest: GET http://user-service/users/7: 404 Not Found: {"message":"no such user"}
}
