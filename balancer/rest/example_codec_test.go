package rest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/graylane/graylane/balancer/rest"
)

// A Client that speaks protobuf first and JSON second, signs in with an
// interceptor, and turns the service's error answers into its own error
// type.
func ExampleWithCodecs() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k3n" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"reason":"no token"}`)
			return
		}
		switch r.URL.Path {
		case "/greet": // protobuf in, protobuf out
			body, _ := io.ReadAll(r.Body)
			var name wrapperspb.StringValue
			_ = proto.Unmarshal(body, &name)
			out, _ := proto.Marshal(wrapperspb.String("hello, " + name.GetValue()))
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(out)
		case "/signup": // a form in, a form out
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			_, _ = io.WriteString(w, url.Values{"id": {"43"}, "name": {r.PostForm.Get("name")}}.Encode())
		}
	}))
	defer srv.Close()

	decodeAuth := func(se *rest.StatusError) error {
		if se.StatusCode != http.StatusUnauthorized {
			return nil // keep the *rest.StatusError
		}
		var doc struct{ Reason string }
		if err := se.Decode(&doc); err != nil {
			return err
		}
		return &authErr{Reason: doc.Reason}
	}
	c := rest.New("greeter", nil, rest.WithBaseURL(srv.URL),
		rest.WithCodecs(rest.Protobuf, rest.JSON),
		rest.WithInterceptors(func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer t0k3n")
			return nil
		}),
		rest.WithErrorDecoder(decodeAuth))
	ctx := context.Background()

	msg, err := rest.Post[*wrapperspb.StringValue, *wrapperspb.StringValue](ctx, c, "/greet", wrapperspb.String("Ada"))
	fmt.Println(msg.GetValue(), err)

	type signup struct {
		ID   string `form:"id,omitempty"`
		Name string `form:"name"`
	}
	s, err := rest.Post[signup, signup](ctx, c, "/signup", signup{Name: "Bo"}, rest.Encoding(rest.Form))
	fmt.Printf("%+v %v\n", s, err)

	anon := rest.New("greeter", nil, rest.WithBaseURL(srv.URL), rest.WithErrorDecoder(decodeAuth))
	_, err = rest.Get[rest.Empty](ctx, anon, "/greet")
	var ae *authErr
	fmt.Println(errors.As(err, &ae), ae.Reason)
	// Output:
	// hello, Ada <nil>
	// {ID:43 Name:Bo} <nil>
	// true no token
}

// authErr is the caller's own error type.
type authErr struct{ Reason string }

func (e *authErr) Error() string { return "unauthorized: " + e.Reason }
