package balancer_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/hashicorp/go-retryablehttp"
)

// A per-attempt timeout abandons an instance that accepts requests but
// never answers, and the request is retried on another one within the
// caller's deadline. Backoff takes go-retryablehttp's functions.
func ExampleRetryPolicy() {
	instance := func(id string, h http.HandlerFunc) (*httptest.Server, discovery.Instance) {
		srv := httptest.NewServer(h)
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		return srv, discovery.Instance{ID: id, Address: host, Port: p, Version: "1.0"}
	}
	hung, hungIn := instance("hung", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	defer hung.Close()
	ok, okIn := instance("ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "answered by ok")
	})
	defer ok.Close()
	reg := discovery.NewStatic()
	reg.Set("svc-b", hungIn, okIn)

	b, _ := balancer.New(reg, balancer.WithRetry(balancer.RetryPolicy{
		Attempts:       3,
		AttemptTimeout: 200 * time.Millisecond,
		Backoff:        retryablehttp.LinearJitterBackoff,
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
	}))
	defer b.Close()
	client := b.Client()
	defer client.CloseIdleConnections()

	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc-b/", nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			cancel()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		fmt.Println(string(body))
	}
	// Output:
	// answered by ok
	// answered by ok
}
