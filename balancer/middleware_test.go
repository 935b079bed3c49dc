package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

const blueGreenRule = `<rule><strategy-release>
<conditions type="blue-green">
  <condition id="c1" expression="#H['xyz'] == '1'" version-id="old"/>
  <condition id="c2" expression="#H['xyz'] == '2'" version-id="new"/>
</conditions>
<routes>
  <route id="old" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
  <route id="new" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
</routes>
%s
</strategy-release></rule>`

func parseRule(t testing.TB, header string) *rule.Rule {
	t.Helper()
	src := blueGreenRule
	if header != "" {
		header = "<header>" + header + "</header>"
	}
	r, err := rule.Parse([]byte(fmt.Sprintf(src, header)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// inboundRoute runs one request through the middleware and returns the
// route and the headers the handler saw.
func inboundRoute(t *testing.T, b *Balancer, url string, hdr http.Header) (Route, bool, http.Header) {
	t.Helper()
	var got Route
	var ok bool
	var seen http.Header
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = RouteFrom(r.Context())
		seen = r.Header
	}))
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return got, ok, seen
}

func versionFor(r Route, svc string) string {
	s, _ := r.Get(rule.TypeVersion).For(svc)
	return s
}

func TestMiddleware(t *testing.T) {
	reg := staticFleet(1, "1.0", "1.1")
	tests := []struct {
		name     string
		opts     []Option
		url      string
		header   http.Header
		want     string // svc-b version in the route; "" none
		wantSeen bool   // handler still sees the inbound n-d-version
	}{
		{"no rule, no header", nil, "/", nil, "", false},
		{"header only", nil, "/", http.Header{"N-D-Version": {"1.1"}}, "1.1", true},
		{"rule decides without header", []Option{WithRule(parseRule(t, ""))}, "/?xyz=2", nil, "1.1", false},
		{"header beats the rule", []Option{WithRule(parseRule(t, ""))}, "/?xyz=2", http.Header{"N-D-Version": {"1.0"}}, "1.0", true},
		{"entry: header still beats the rule", []Option{WithRule(parseRule(t, "")), WithEntry(true)}, "/?xyz=2", http.Header{"N-D-Version": {"1.0"}}, "1.0", true},
		{"trusted edge drops headers", []Option{WithRule(parseRule(t, "")), WithTrustedEdge(true)}, "/?xyz=2", http.Header{"N-D-Version": {"1.0"}, "N-D-Whatever": {"x"}}, "1.1", false},
		{"trusted edge without rule", []Option{WithTrustedEdge(true)}, "/", http.Header{"N-D-Version": {"1.0"}}, "", false},
		{"built-in header wins", []Option{WithRule(parseRule(t, `{"xyz":"1"}`)), WithTrustedEdge(true)}, "/", http.Header{"Xyz": {"2"}}, "1.0", false},
		{"request header first", []Option{WithRule(parseRule(t, `{"xyz":"1"}`)), WithTrustedEdge(true), WithHeaderPriority(rule.RequestFirst)}, "/", http.Header{"Xyz": {"2"}}, "1.1", false},
		{"bad header ignored", nil, "/", http.Header{"N-D-Version": {`{"svc-b":`}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBalancer(t, reg, tt.opts...)
			r, ok, seen := inboundRoute(t, b, tt.url, tt.header)
			if got := versionFor(r, "svc-b"); got != tt.want {
				t.Errorf("route svc-b version %q (in context: %v), want %q", got, ok, tt.want)
			}
			if got := seen.Get(rule.TypeVersion.HeaderName()) != ""; got != tt.wantSeen {
				t.Errorf("handler sees n-d-version: %v, want %v", got, tt.wantSeen)
			}
		})
	}
}

func TestMiddlewareForwardsHeaders(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0"), WithForwardHeaders("x-user", ""), WithRule(parseRule(t, `{"xyz":"1"}`)), WithEntry(true))
	r, _, _ := inboundRoute(t, b, "/", http.Header{"X-User": {"u1"}, "X-Other": {"no"}})
	if http.Header(r.Header).Get("X-User") != "u1" || http.Header(r.Header).Get("X-Other") != "" || http.Header(r.Header).Get("Xyz") != "1" {
		t.Errorf("forwarded %v, want X-User and the built-in Xyz only", r.Header)
	}
	// Downstream, the transport sets them on the outgoing request.
	out := http.Header{}
	SetRouteHeader(out, &r)
	if out.Get("X-User") != "u1" || out.Get("Xyz") != "1" || out.Get(rule.TypeVersion.HeaderName()) == "" {
		t.Errorf("outgoing header %v", out)
	}
}

func TestRouteHeaderRoundTrip(t *testing.T) {
	in := http.Header{}
	var names []string
	for t := range rule.NumTypes {
		if n := t.HeaderName(); n != "" {
			in.Set(n, `{"svc":"v`+string(rune('0'+len(names)))+`"}`)
			names = append(names, n)
		}
	}
	r, ok, err := RouteFromHeader(in)
	if !ok || err != nil {
		t.Fatalf("RouteFromHeader: %v %v", ok, err)
	}
	out := http.Header{"N-D-Stale": {"x"}}
	SetRouteHeader(out, &r)
	for _, n := range names {
		if out.Get(n) != in.Get(n) {
			t.Errorf("%s: %q, want %q", n, out.Get(n), in.Get(n))
		}
	}
	if out.Get("N-D-Stale") != "x" {
		t.Error("writing a route removed an n-d-* header it does not carry")
	}
	if c := r.Constraint("svc"); c[rule.TypeVersion] != "v0" || c[rule.TypeEnv] != "v9" {
		t.Errorf("constraint %+v", c)
	}
	// A zero route deletes the n-d-* headers it does not carry.
	var zero Route
	SetRouteHeader(out, &zero)
	if out.Get(rule.TypeVersion.HeaderName()) != "" || !zero.IsZero() || zero.String() != "(none)" {
		t.Error("zero route left routing headers")
	}
	_, _, err = RouteFromHeader(http.Header{"N-D-Region": {"{bad"}, "N-D-Env": {"{"}})
	var he *HeaderError
	if !errors.As(err, &he) || he.Name == "" {
		t.Fatalf("bad header error %v", err)
	}
}

// FuzzRouteFromHeader checks that any header values decode without panic,
// and that what decodes survives a round trip through SetHeader.
func FuzzRouteFromHeader(f *testing.F) {
	f.Add(`{"svc-a":"1.0","svc-b":"1.1"}`, "1.0;1.1", `{"a":1}`)
	f.Add("", "{", `{"a":"x","a":"y"}`)
	f.Add(`{"\u00e9":"\ud800"}`, "dev", "1.0=90;1.1=10")
	f.Fuzz(func(t *testing.T, version, region, weight string) {
		h := http.Header{}
		h.Set(rule.TypeVersion.HeaderName(), version)
		h.Set(rule.TypeRegion.HeaderName(), region)
		h.Set(rule.TypeVersionWeight.HeaderName(), weight)
		r, _, _ := RouteFromHeader(h)
		out := http.Header{}
		SetRouteHeader(out, &r)
		again, _, err := RouteFromHeader(out)
		if err != nil {
			t.Fatalf("re-reading our own headers: %v", err)
		}
		if again.String() != r.String() {
			t.Fatalf("round trip changed the route: %s -> %s", r.String(), again.String())
		}
		c := r.Constraint("svc-a")
		s := NewSelector("svc-a", fleet("svc-a", 1, "1.0", "1.1").Instances, SelectorConfig{})
		_, _ = s.Select(&c, 7)
	})
}

func ExampleBalancer_Middleware() {
	reg := discovery.NewStatic()
	reg.Set("svc-b",
		discovery.Instance{ID: "b1", Address: "10.0.0.1", Port: 8080, Version: "1.0"},
		discovery.Instance{ID: "b2", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
	)
	r, _ := rule.Parse([]byte(`<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="c" expression="#H['xyz'] == '2'" version-id="new"/>
  </conditions>
  <routes><route id="new" type="version">{"svc-b":"1.1"}</route></routes>
</strategy-release></rule>`))
	b, _ := New(reg, WithRule(r), WithTrustedEdge(true))
	defer b.Close()

	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		in, done, err := b.Pick(req.Context(), "svc-b")
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer done(nil)
		route, _ := RouteFrom(req.Context())
		_, _ = w.Write([]byte(in.ID + " " + route.Get(rule.TypeVersion).String()))
	}))
	req := httptest.NewRequest(http.MethodGet, "/?xyz=2", nil)
	req.Header.Set("n-d-version", "1.0") // not obeyed at a trusted edge
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output: b2 {"svc-b":"1.1"}
}
