package balancer

import (
	"maps"
	"net/http"
	"slices"
	"testing"
)

// TestSetRouteHeaderExact checks that SetRouteHeader leaves h carrying
// exactly the route, whichever path it takes: a header without routing keys
// (nothing to delete) and a header with stale ones.
func TestSetRouteHeaderExact(t *testing.T) {
	r := mustRoute(t, `{"svc-a":"1.1"}`)
	r.Header = map[string][]string{"X-User": {"u1"}}
	tests := []struct {
		name string
		give http.Header
		want []string // the keys after
	}{
		{"no routing keys", http.Header{"Accept": {"a"}}, []string{"Accept", "N-D-Version", "X-User"}},
		{"empty", http.Header{}, []string{"N-D-Version", "X-User"}},
		{"stale canonical", http.Header{"Accept": {"a"}, "N-D-Region": {"dev"}, "N-D-Version": {"1.0"}}, []string{"Accept", "N-D-Version", "X-User"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			SetRouteHeader(tt.give, &r)
			if got := slices.Sorted(maps.Keys(tt.give)); !slices.Equal(got, tt.want) {
				t.Errorf("keys %q, want %q", got, tt.want)
			}
			if v := tt.give.Get("N-D-Version"); v != `{"svc-a":"1.1"}` {
				t.Errorf("n-d-version %q", v)
			}
			if v := tt.give.Get("X-User"); v != "u1" {
				t.Errorf("x-user %q", v)
			}
		})
	}
}
