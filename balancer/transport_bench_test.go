package balancer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
)

// BenchmarkTransportPolicy measures what the retry policy's options cost a
// request that succeeds at once: the balancer's default policy, a
// per-service policy with a retry budget (a map lookup and an atomic load
// per request), and a per-attempt timeout (a timer and a context per
// attempt).
func BenchmarkTransportPolicy(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	reg := discovery.NewStatic()
	reg.Set("svc", backendInstance(b, "svc", srv))
	ctx := WithRoute(context.Background(), mustRoute(b, `{"svc":"1.0"}`))
	for _, tt := range []struct {
		name string
		opts []Option
	}{
		{"default", nil},
		{"service+budget", []Option{WithServiceRetry("svc", RetryPolicy{BudgetRatio: 0.2})}},
		{"attempt-timeout", []Option{WithRetry(RetryPolicy{AttemptTimeout: 10 * time.Second})}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			bal, err := New(reg, tt.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer bal.Close()
			c := bal.Client()
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/x", nil)
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
