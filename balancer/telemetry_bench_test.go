package balancer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/discovery"
)

// BenchmarkTelemetry compares a pick, a call through the transport (to a
// loopback server) and a request through the middleware with metrics off
// (no meter provider) and on (the OpenTelemetry SDK with a manual
// reader). Off must cost nothing; on at most one allocation per call.
func BenchmarkTelemetry(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	be := backendInstance(b, "svc", srv)
	reg := discovery.NewStatic()
	reg.Set("svc", be)
	for _, on := range []bool{false, true} {
		name := "off"
		var opts []Option
		if on {
			name = "on"
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer func() { _ = mp.Shutdown(context.Background()) }()
			opts = append(opts, WithMeterProvider(mp), WithIdentity(Identity{Service: "svc-a", Version: "1.0"}))
		}
		bal, err := New(reg, opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer bal.Close()
		ctx := WithRoute(context.Background(), mustRoute(b, `{"svc":"1.0"}`))
		b.Run("pick/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := bal.Pick(ctx, "svc")
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = 64
		client := &http.Client{Transport: bal.Transport(base)}
		b.Run("transport/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/x", nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		base.CloseIdleConnections()
		h := bal.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("N-D-Version", "1.0")
		w := &nopWriter{h: http.Header{}}
		b.Run("middleware/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}
