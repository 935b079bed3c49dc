package balancer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/graylane/graylane/balancer/pick"
)

// nepxionOnly are n-d-* headers Nepxion's interceptors forward that no
// route type of graylane reads (or did not when this test was written):
// a graylane hop passes them on as they arrived.
var nepxionOnly = map[string]string{
	"N-D-Region-Transfer":  "dev",
	"N-D-Region-Failover":  "qa",
	"N-D-Env-Failover":     "common",
	"N-D-Zone-Failover":    "z2",
	"N-D-Address-Failover": "10.0.0.9:8080",
	"N-D-Group":            "g1",
}

// TestMiddleHopPropagates checks a graylane hop as Nepxion's
// FeignStrategyInterceptor behaves (Discovery 6.x.x): every inbound n-d-*
// header goes on unchanged, except the n-d-service-* identity headers,
// which carry this hop's own identity (fields it does not have are not
// sent, whatever the caller sent).
func TestMiddleHopPropagates(t *testing.T) {
	reg := staticFleet(1, "1.0")
	down := startBackend(t, "svc-c", "c-1", "1.0", nil)
	down.in.Region = "dev" // where n-d-region-transfer sends calls that route no region
	reg.Set("svc-c", down.in)
	self := Identity{Service: "svc-b", ID: "svc-b-1", Address: "10.0.0.2:8080", Version: "1.0", Group: "g1"}
	b := newBalancer(t, reg, WithIdentity(self))
	client := b.Client()
	defer client.CloseIdleConnections()
	hop := httptest.NewServer(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := get(t, client, r.Context(), "http://svc-c/", nil)
		w.WriteHeader(code)
	})))
	defer hop.Close()

	hdr := map[string]string{
		"n-d-version": "1.0", "n-d-service-id": "gateway", "n-d-service-zone": "z9",
		"n-d-service-env": "e9", "x-other": "not forwarded",
	}
	for k, v := range nepxionOnly {
		hdr[k] = v
	}
	if code, _ := get(t, http.DefaultClient, context.Background(), hop.URL, hdr); code != http.StatusOK {
		t.Fatalf("hop answered %d", code)
	}
	seen := *down.lastHeader.Load()
	for k, v := range nepxionOnly {
		if got := seen.Get(k); got != v {
			t.Errorf("%s: downstream saw %q, want %q", k, got, v)
		}
	}
	want := map[string]string{
		pick.HeaderServiceID: "svc-b", pick.HeaderServiceAddress: "10.0.0.2:8080",
		pick.HeaderServiceVersion: "1.0", pick.HeaderServiceGroup: "g1", pick.HeaderServiceType: "service",
		pick.HeaderServiceZone: "", pick.HeaderServiceEnv: "", pick.HeaderServiceRegion: "", pick.HeaderServiceAppID: "",
		"n-d-version": "1.0", "x-other": "",
	}
	for k, v := range want {
		if got := seen.Get(k); got != v {
			t.Errorf("%s: downstream saw %q, want %q", k, got, v)
		}
	}
}

// TestOutboundIdentityWithoutRoute checks that a call without any route
// still carries the caller's identity, and that an anonymous caller
// forwards no identity it was handed.
func TestOutboundIdentityWithoutRoute(t *testing.T) {
	reg := staticFleet(1, "1.0")
	down := startBackend(t, "svc-c", "c-1", "1.0", nil)
	reg.Set("svc-c", down.in)
	named := newBalancer(t, reg, WithIdentity(Identity{Service: "svc-a", ID: "svc-a-1"}))
	c := named.Client()
	defer c.CloseIdleConnections()
	get(t, c, context.Background(), "http://svc-c/", nil)
	if got := down.lastHeader.Load().Get(pick.HeaderServiceID); got != "svc-a" {
		t.Errorf("n-d-service-id %q, want svc-a", got)
	}
	anon := newBalancer(t, reg).Client()
	defer anon.CloseIdleConnections()
	get(t, anon, context.Background(), "http://svc-c/", map[string]string{pick.HeaderServiceID: "someone"})
	if got := down.lastHeader.Load().Get(pick.HeaderServiceID); got != "" {
		t.Errorf("anonymous caller sent n-d-service-id %q", got)
	}
}

// TestTrustedEdgeDropsPassedHeaders checks that a trusted edge drops what
// clients send of the headers a hop passes on, as it drops the route's.
func TestTrustedEdgeDropsPassedHeaders(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0", "1.1"), WithRule(parseRule(t, "")), WithTrustedEdge(true))
	hdr := http.Header{"X-User": {"u1"}}
	for k, v := range nepxionOnly {
		hdr[k] = []string{v}
	}
	r, _, seen := inboundRoute(t, b, "/?xyz=2", hdr)
	out := http.Header{}
	SetRouteHeader(out, &r)
	for k := range nepxionOnly {
		if out.Get(k) != "" || seen.Get(k) != "" {
			t.Errorf("%s from a client got through a trusted edge", k)
		}
	}
	if got := versionFor(r, "svc-b"); got != "1.1" {
		t.Errorf("route svc-b version %q, want the rule's 1.1", got)
	}
}

// TestPassedHeadersSurviveDecision checks that a hop whose rule decides
// (no route arrived) still passes on the n-d-* headers that did arrive.
func TestPassedHeadersSurviveDecision(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0", "1.1"), WithRule(parseRule(t, "")))
	sent := func(r *Route) http.Header {
		h := http.Header{}
		SetRouteHeader(h, r)
		return h
	}
	r, ok, _ := inboundRoute(t, b, "/?xyz=2", http.Header{"N-D-Region-Failover": {"qa"}, "N-D-Something-New": {"x"}})
	if !ok || versionFor(r, "svc-b") != "1.1" {
		t.Fatalf("route %s, want the rule's decision", r.String())
	}
	if h := sent(&r); h.Get("n-d-region-failover") != "qa" || h.Get("n-d-something-new") != "x" {
		t.Errorf("route %s sends %v, want what arrived", r.String(), h)
	}
	// So do the table's own non-deciding headers: the env, a failover
	// value, a blacklist.
	r, _, _ = inboundRoute(t, b, "/?xyz=2", http.Header{"N-D-Env": {"e1"}, "N-D-Version-Failover": {"1.0"}})
	if h := sent(&r); versionFor(r, "svc-b") != "1.1" || h.Get("n-d-env") != "e1" || h.Get("n-d-version-failover") != "1.0" {
		t.Errorf("route %s, want the rule's version with the env and failover that arrived", r.String())
	}
	// Without rule, what arrived is carried all the same.
	r, ok, _ = inboundRoute(t, newBalancer(t, staticFleet(1, "1.0")), "/", http.Header{"N-D-Group": {"g1"}})
	if h := sent(&r); !ok || h.Get("n-d-group") != "g1" {
		t.Errorf("route %s (carried %v) sends %v, want n-d-group", r.String(), ok, h)
	}
}

// BenchmarkMiddleHop measures a middle hop's header work per request with
// the n-d-* headers a Nepxion chain carries: reading the route (with the
// headers it passes on) from the inbound request, and writing the route
// and the hop's identity onto an outbound header as the transport does.
func BenchmarkMiddleHop(b *testing.B) {
	bal := newBalancer(b, staticFleet(1, "1.0"),
		WithIdentity(Identity{Service: "svc-b", ID: "svc-b-1", Address: "10.0.0.2:8080", Version: "1.0", Group: "g1"}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("n-d-version", `{"svc-b":"1.0","svc-c":"1.0"}`)
	req.Header.Set("n-d-service-id", "gateway")
	for k, v := range nepxionOnly {
		req.Header.Set(k, v)
	}
	b.Run("inbound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := bal.inbound(req); r == req {
				b.Fatal("no route")
			}
		}
	})
	route := routeFrom(bal.inbound(req).Context())
	b.Run("outbound-headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := make(http.Header, 4+bal.identityRoom())
			SetRouteHeader(h, route)
			bal.InjectIdentity(headerCarrier(h))
		}
	})
}
