package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// When every instance of the version a request is routed to fails, that
// version's circuit breaker opens and requests fail fast, naming the
// service and version, without reaching it; 1.0 is untouched.
func ExampleBreakerPolicy() {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	reg := discovery.NewStatic()
	reg.Set("svc-b", discovery.Instance{ID: "b-1.1", Address: host, Port: p, Version: "1.1"})

	b, _ := balancer.New(reg,
		balancer.WithRetry(balancer.RetryPolicy{Attempts: 1}),
		balancer.WithServiceBreaker("svc-b", balancer.BreakerPolicy{
			MinRequests:  5,           // open once 5 attempts were counted...
			FailureRatio: 0.8,         // ...and 80 % of them failed
			OpenTimeout:  time.Minute, // then fail fast for a minute before probing
		}))
	defer b.Close()
	c := b.Client()
	defer c.CloseIdleConnections()

	ctx := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")))
	var last error
	for range 8 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc-b/", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		last = err
	}
	var open *balancer.BreakerOpenError
	fmt.Println(errors.Is(last, balancer.ErrBreakerOpen), errors.As(last, &open), open.Service, open.Version)
	fmt.Println("requests sent:", sent.Load())
	fmt.Println("breaker:", b.Debug().Services[0].Breakers[0].State)
	// Output:
	// true true svc-b 1.1
	// requests sent: 5
	// breaker: open
}
