package grpcroute

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// chainRule routes xyz=1 to 1.0, xyz=2 to 1.1 and splits xyz=3 90/10, for
// svc-a and svc-b alike; other requests use the <strategy> 1.0.
const chainRule = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <strategy>
        <version>{"svc-a":"1.0","svc-b":"1.0"}</version>
    </strategy>
    <strategy-release>
        <conditions type="blue-green">
            <condition id="condition-0" expression="#H['xyz'] == '1'" version-id="route-0"/>
            <condition id="condition-1" expression="#H['xyz'] == '2'" version-id="route-1"/>
        </conditions>
        <conditions type="gray">
            <condition id="condition-2" expression="#H['xyz'] == '3'" version-id="route-0=90;route-1=10"/>
        </conditions>
        <routes>
            <route id="route-0" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
            <route id="route-1" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
        </routes>
    </strategy-release>
</rule>`

func mustRule(t testing.TB, doc string) *rule.Rule {
	t.Helper()
	r, err := rule.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newRuleBalancer(t testing.TB, doc string, opts ...balancer.Option) *balancer.Balancer {
	t.Helper()
	opts = append([]balancer.Option{balancer.WithRule(mustRule(t, doc))}, opts...)
	b, err := balancer.New(discovery.NewStatic(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func routeVersion(t *testing.T, ctx context.Context, service string) string {
	t.Helper()
	r, ok := balancer.RouteFrom(ctx)
	if !ok {
		return "<no route>"
	}
	return r.Constraint(service)[rule.TypeVersion]
}

// newBalancer returns a balancer without rule.
func newBalancer(t testing.TB, opts ...balancer.Option) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(discovery.NewStatic(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestInbound(t *testing.T) {
	tests := []struct {
		name string
		give metadata.MD
		opts []balancer.Option // the balancer's settings
		nob  bool              // interceptors without a balancer
		want string            // svc-a's version constraint
	}{
		{name: "route arrived, not an entry", give: metadata.Pairs("n-d-version", `{"svc-a":"1.1"}`, "xyz", "1"), want: "1.1"},
		{name: "no route: the rule decides", give: metadata.Pairs("xyz", "2"), want: "1.1"},
		{name: "no route, no condition: strategy", give: metadata.Pairs("xyz", "9"), want: "1.0"},
		{name: "no metadata at all", give: nil, want: "1.0"},
		{name: "entry: arrived header wins per key", give: metadata.Pairs("n-d-version", "1.1", "xyz", "1"), opts: []balancer.Option{balancer.WithEntry(true)}, want: "1.1"},
		{name: "entry decides other keys", give: metadata.Pairs("n-d-region", "r1", "xyz", "2"), opts: []balancer.Option{balancer.WithEntry(true)}, want: "1.1"},
		{name: "trusted edge drops n-d-*", give: metadata.Pairs("n-d-version", "9.9", "xyz", "1"), opts: []balancer.Option{balancer.WithTrustedEdge(true)}, want: "1.0"},
		{name: "trusted edge keys in any case", give: metadata.MD{"N-D-Version": {"9.9"}, "xyz": {"2"}}, opts: []balancer.Option{balancer.WithTrustedEdge(true)}, want: "1.1"},
		{name: "no balancer: carried only", give: metadata.Pairs("n-d-version", "1.1"), nob: true, want: "1.1"},
		{name: "no balancer, no route", give: metadata.Pairs("xyz", "1"), nob: true, want: "<no route>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bb *balancer.Balancer
			if !tt.nob {
				bb = newRuleBalancer(t, chainRule, tt.opts...)
			}
			i := NewInterceptors(bb)
			ctx := context.Background()
			if tt.give != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.give)
			}
			if got := routeVersion(t, i.Inbound(ctx, "/svc/M"), "svc-a"); got != tt.want {
				t.Fatalf("svc-a version %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInboundEntryKeepsOtherArrivedKeys(t *testing.T) {
	i := NewInterceptors(newRuleBalancer(t, chainRule, balancer.WithEntry(true)))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("n-d-region", "r1", "xyz", "2"))
	r, _ := balancer.RouteFrom(i.Inbound(ctx, "/m"))
	if c := r.Constraint("svc-b"); c[rule.TypeRegion] != "r1" || c[rule.TypeVersion] != "1.1" {
		t.Fatalf("constraint %v, want region r1 and version 1.1", c.String())
	}
}

func TestInboundBadValueLoggedAndLeftOut(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	i := NewInterceptors(nil, WithLogger(zap.New(core)))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("n-d-version", `{"svc-a":`, "n-d-region", "r1"))
	r, ok := balancer.RouteFrom(i.Inbound(ctx, "/svc/M"))
	if !ok {
		t.Fatal("no route; the good key must survive")
	}
	if c := r.Constraint("svc-a"); c[rule.TypeVersion] != "" || c[rule.TypeRegion] != "r1" {
		t.Fatalf("constraint %s, want region only", c.String())
	}
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].ContextMap()["error"].(string), "n-d-version") {
		t.Fatalf("logs %v, want one warning naming n-d-version", logs.All())
	}
}

func TestInboundForwardsBusinessMetadata(t *testing.T) {
	doc := strings.Replace(chainRule, "</strategy-release>", `<header>{"pinned":"yes"}</header></strategy-release>`, 1)
	i := NewInterceptors(newRuleBalancer(t, doc, balancer.WithForwardHeaders("X-User", " ", "n-d-version")))
	ctx := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs("x-user", "u1", "pinned", "no", "other", "o", "n-d-version", "1.1"))
	r, _ := balancer.RouteFrom(i.Inbound(ctx, "/m"))
	want := http.Header{"X-User": {"u1"}, "Pinned": {"no"}}
	if len(r.Header) != len(want) || http.Header(r.Header).Get("X-User") != "u1" || http.Header(r.Header).Get("Pinned") != "no" {
		t.Fatalf("forwarded %v, want %v", r.Header, want)
	}
}

func TestOutbound(t *testing.T) {
	var route balancer.Route
	route.Set(rule.TypeVersion, rule.PlainValue("1.1"))
	route.Header = http.Header{"X-User": {"u1"}, "Bad-Value": {"caf\xc3\xa9"}, "Grpc-Timeout": {"1S"}}
	tests := []struct {
		name     string
		give     metadata.MD // outgoing metadata before the call
		want     metadata.MD // routing and forwarded keys after
		wantDrop []string    // keys that must be gone
	}{
		{name: "fresh", want: metadata.Pairs("n-d-version", "1.1", "x-user", "u1"), wantDrop: []string{"bad-value", "grpc-timeout"}},
		{name: "stale routing keys replaced", give: metadata.Pairs("n-d-region", "old", "keep", "k"),
			want: metadata.Pairs("n-d-version", "1.1", "n-d-region", "old", "keep", "k")},
		{name: "explicit key overrides the route", give: metadata.Pairs("n-d-version", "2.0"),
			want: metadata.Pairs("n-d-version", "2.0", "x-user", "u1")},
		{name: "explicit business value kept", give: metadata.Pairs("x-user", "mine"),
			want: metadata.Pairs("n-d-version", "1.1", "x-user", "mine")},
	}
	i := NewInterceptors(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := balancer.WithRoute(context.Background(), route)
			if tt.give != nil {
				ctx = metadata.NewOutgoingContext(ctx, tt.give)
			}
			out := i.Outbound(ctx)
			md, _ := metadata.FromOutgoingContext(out)
			for k, vs := range tt.want {
				if !slices.Equal(md[k], vs) {
					t.Errorf("%s = %q, want %q", k, md[k], vs)
				}
			}
			for _, k := range tt.wantDrop {
				if _, ok := md[k]; ok {
					t.Errorf("%s forwarded; gRPC would reject it", k)
				}
			}
			// The picker routes by the context's route, which must agree
			// with the metadata.
			if got, want := routeVersion(t, out, "svc-a"), md["n-d-version"][0]; got != want {
				t.Errorf("context route %q, metadata %q", got, want)
			}
		})
	}
}

func TestOutboundDecidesWithoutRoute(t *testing.T) {
	i := NewInterceptors(newRuleBalancer(t, chainRule))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "xyz", "2")
	out := i.Outbound(ctx)
	md, _ := metadata.FromOutgoingContext(out)
	if got := md.Get("n-d-version"); len(got) != 1 || !strings.Contains(got[0], `"svc-a":"1.1"`) {
		t.Fatalf("n-d-version %q, want the 1.1 route", got)
	}
	if got := routeVersion(t, out, "svc-b"); got != "1.1" {
		t.Fatalf("context route for svc-b %q, want 1.1", got)
	}
	// Without balancer and route, nothing is added.
	plain := NewInterceptors(nil).Outbound(context.Background())
	if md, ok := metadata.FromOutgoingContext(plain); ok && md.Len() > 0 {
		t.Fatalf("metadata %v added without a route", md)
	}
}

// TestRoundTrip sends a route out through the client side and reads it in
// through the server side of another hop.
func TestRoundTrip(t *testing.T) {
	var route balancer.Route
	v, err := rule.ParseValue(`{"svc-a":"1.1","svc-b":"1.0;1.1"}`)
	if err != nil {
		t.Fatal(err)
	}
	route.Set(rule.TypeVersion, v)
	route.Set(rule.TypeVersionWeight, rule.PlainValue("1.0=90;1.1=10"))
	route.Set(rule.TypeIDBlacklist, rule.PlainValue("bad-*"))
	route.Header = http.Header{"X-User": {"u1"}}
	i := NewInterceptors(newBalancer(t, balancer.WithForwardHeaders("x-user")))
	md, _ := metadata.FromOutgoingContext(i.Outbound(balancer.WithRoute(context.Background(), route)))
	got, ok := balancer.RouteFrom(i.Inbound(metadata.NewIncomingContext(context.Background(), md), "/m"))
	if !ok {
		t.Fatal("no route after the round trip")
	}
	if got.String() != route.String() || http.Header(got.Header).Get("X-User") != "u1" {
		t.Fatalf("route %s %v, want %s %v", got.String(), got.Header, route.String(), route.Header)
	}
}

func TestTrustedEdgeHidesRoutingMetadata(t *testing.T) {
	i := NewInterceptors(newRuleBalancer(t, chainRule, balancer.WithTrustedEdge(true)))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("n-d-version", "9.9", "N-D-Env", "x", "xyz", "2"))
	out := i.Inbound(ctx, "/m")
	md, _ := metadata.FromIncomingContext(out)
	if len(md.Get("n-d-version")) != 0 || len(md.Get("n-d-env")) != 0 || md.Get("xyz")[0] != "2" {
		t.Fatalf("handler sees %v, want n-d-* gone and xyz kept", md)
	}
	if got := routeVersion(t, out, "svc-a"); got != "1.1" {
		t.Fatalf("svc-a version %q, want the rule's 1.1", got)
	}
}

func TestTrustedEdgeHidesFoldedRoutingMetadata(t *testing.T) {
	i := NewInterceptors(newRuleBalancer(t, chainRule, balancer.WithTrustedEdge(true)))
	md := metadata.MD{"n_d_version": {"9.9"}, "n-d_env": {"x"}, "N_D-Region": {"r"}, "nd-other": {"kept"}, "xyz": {"2"}}
	out := i.Inbound(metadata.NewIncomingContext(context.Background(), md), "/m")
	got, _ := metadata.FromIncomingContext(out)
	for k := range got {
		if pick.IsFoldedRoutingKey(k) {
			t.Errorf("handler behind a trusted edge sees %s", k)
		}
	}
	if len(got["nd-other"]) == 0 || len(got["xyz"]) == 0 {
		t.Errorf("handler lost metadata: %v", got)
	}
}
