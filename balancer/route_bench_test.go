package balancer

import (
	"net/http"
	"testing"
)

// BenchmarkSetRouteHeader measures writing a version route onto an
// outbound request's header, as the transport does for every request: on a
// header without routing keys (the common case: the transport's own copy of
// a request the caller built) and on one that carries stale ones.
func BenchmarkSetRouteHeader(b *testing.B) {
	r := mustRoute(b, `{"svc-a":"1.1","svc-b":"1.1"}`)
	for _, tt := range []struct {
		name string
		give http.Header
	}{
		{"fresh", http.Header{"Accept": {"application/json"}, "X-Request-Id": {"r1"}}},
		{"stale", http.Header{"Accept": {"application/json"}, "N-D-Region": {"dev"}, "n_d_env": {"x"}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := make(http.Header, len(tt.give)+4)
				for k, vs := range tt.give {
					h[k] = vs
				}
				SetRouteHeader(h, &r)
			}
		})
	}
}
