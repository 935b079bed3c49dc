package balancer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// lowerHeader is a carrier with lower-case names, as gRPC metadata is.
type lowerHeader map[string][]string

func (h lowerHeader) Values(key string) []string { return h[strings.ToLower(key)] }

func (h lowerHeader) Get(key string) string {
	if vs := h.Values(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func toLower(h http.Header) lowerHeader {
	out := lowerHeader{}
	for k, vs := range h {
		out[strings.ToLower(k)] = vs
	}
	return out
}

// TestInboundAgreesWithMiddleware runs the same requests through the
// middleware and through Inbound over a lower-case carrier: one balancer,
// one set of settings, the same route either way.
func TestInboundAgreesWithMiddleware(t *testing.T) {
	reg := staticFleet(1, "1.0", "1.1")
	tests := []struct {
		name   string
		opts   []Option
		url    string
		header http.Header
	}{
		{"nothing", nil, "/", nil},
		{"header only", nil, "/", http.Header{"N-D-Version": {"1.1"}}},
		{"rule decides", []Option{WithRule(parseRule(t, ""))}, "/?xyz=2", nil},
		{"header beats the rule", []Option{WithRule(parseRule(t, ""))}, "/?xyz=2", http.Header{"N-D-Version": {"1.0"}}},
		{"entry keeps other arrived keys", []Option{WithRule(parseRule(t, "")), WithEntry(true)}, "/?xyz=2", http.Header{"N-D-Region": {"r1"}}},
		{"trusted edge", []Option{WithRule(parseRule(t, "")), WithTrustedEdge(true)}, "/?xyz=2", http.Header{"N-D-Version": {"1.0"}}},
		{"trusted edge without rule", []Option{WithTrustedEdge(true)}, "/", http.Header{"N-D-Version": {"1.0"}, "X-User": {"u"}}},
		{"forward and built-in header", []Option{WithRule(parseRule(t, `{"xyz":"1"}`)), WithForwardHeaders("x-user")}, "/", http.Header{"X-User": {"u1"}, "Xyz": {"2"}, "X-Other": {"o"}}},
		{"forward without rule", []Option{WithForwardHeaders("X-User")}, "/", http.Header{"X-User": {"u1"}}},
		{"bad header", nil, "/", http.Header{"N-D-Version": {`{"svc-b":`}, "N-D-Region": {"r1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBalancer(t, reg, append(tt.opts, withDraw(func() uint64 { return 0 }))...)
			want, wantOK, _ := inboundRoute(t, b, tt.url, tt.header)
			req := httptest.NewRequest(http.MethodGet, tt.url, nil)
			maps.Copy(req.Header, tt.header)
			ctx, _ := b.Inbound(context.Background(), toLower(tt.header), RequestValues(req))
			got, ok := RouteFrom(ctx)
			if ok != wantOK || got.String() != want.String() || fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
				t.Errorf("Inbound: %v %s %v; middleware: %v %s %v", ok, got.String(), got.Header, wantOK, want.String(), want.Header)
			}
		})
	}
}

func TestInboundTrustedEdgeForwardsNoRoutingHeader(t *testing.T) {
	b := newBalancer(t, discovery.NewStatic(), WithTrustedEdge(true), WithForwardHeaders("n-d-version", "x-user"))
	h := http.Header{"N-D-Version": {"9.9"}, "X-User": {"u1"}}
	ctx, err := b.Inbound(context.Background(), h, expr.Map{})
	r, _ := RouteFrom(ctx)
	if err != nil || !r.Get(rule.TypeVersion).IsZero() || http.Header(r.Header).Get("N-D-Version") != "" || http.Header(r.Header).Get("X-User") != "u1" {
		t.Fatalf("route %s header %v err %v; want only X-User forwarded", r.String(), r.Header, err)
	}
}

func TestInboundError(t *testing.T) {
	b := newBalancer(t, discovery.NewStatic())
	h := http.Header{"N-D-Version": {`{"svc-b":`}, "N-D-Env": {"blue"}}
	ctx, err := b.Inbound(context.Background(), h, expr.Map{})
	var he *HeaderError
	if !errors.As(err, &he) || he.Name != rule.TypeVersion.HeaderName() {
		t.Fatalf("error %v, want a *HeaderError for %s", err, rule.TypeVersion.HeaderName())
	}
	if r, ok := RouteFrom(ctx); !ok || r.Get(rule.TypeEnv).String() != "blue" || !r.Get(rule.TypeVersion).IsZero() {
		t.Fatalf("route %s, want the good n-d-env only", r.String())
	}
}

func TestInboundNilBalancer(t *testing.T) {
	var b *Balancer
	if b.TrustedEdge() {
		t.Error("a nil balancer is a trusted edge")
	}
	ctx := context.Background()
	if got, err := b.Inbound(ctx, http.Header{"X-User": {"u"}}, expr.Map{}); got != ctx || err != nil {
		t.Errorf("nothing arrived: context replaced (%v)", err)
	}
	got, _ := b.Inbound(ctx, http.Header{"N-D-Version": {"1.1"}, "X-User": {"u"}}, expr.Map{})
	if r, ok := RouteFrom(got); !ok || r.Get(rule.TypeVersion).String() != "1.1" || r.Header != nil {
		t.Errorf("route %s %v, want version 1.1 carried and nothing forwarded", r.String(), r.Header)
	}
}

func TestInboundNothingToCarryDoesNotAllocate(t *testing.T) {
	b := newBalancer(t, discovery.NewStatic(), WithForwardHeaders("x-user"))
	h := headerCarrier{"Accept": {"*/*"}}
	ctx, values := context.Background(), expr.Map{}
	if n := testing.AllocsPerRun(100, func() { _, _ = b.Inbound(ctx, h, values) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// A transport's inbound step is Inbound over its carrier of headers; here
// an http.Header at a gateway whose rule sends xyz=2 to 1.1.
func ExampleBalancer_Inbound() {
	r, _ := rule.Parse([]byte(`<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="c" expression="#H['xyz'] == '2'" version-id="new"/>
  </conditions>
  <routes><route id="new" type="version">{"svc-b":"1.1"}</route></routes>
</strategy-release></rule>`))
	b, err := New(discovery.NewStatic(), WithRule(r), WithEntry(true), WithForwardHeaders("x-user"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	h := http.Header{"Xyz": {"2"}, "X-User": {"u7"}, "N-D-Region": {"r1"}}
	ctx, err := b.Inbound(context.Background(), h, expr.Map{"xyz": "2"})
	route, _ := RouteFrom(ctx)
	fmt.Println(route.Get(rule.TypeVersion).String(), route.Get(rule.TypeRegion).String(), http.Header(route.Header).Get("X-User"), err)
	// Output:
	// {"svc-b":"1.1"} r1 u7 <nil>
}
