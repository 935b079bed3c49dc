package grpcroute

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"consul:///svc-a", "consul:///svc-a?dc=dc1&tag=x", "consul:///", "consul://host/svc",
		"consul:///a/b", "consul:///svc?dc=%zz", "consul:svc", "consul:///svc?dc=a&dc=b", "consul:///svc?x=1",
		"consul:///%20", "consul:///svc?tag=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		service, sc, err := parseTarget(resolver.Target{URL: *u})
		if err != nil {
			if !strings.Contains(err.Error(), "target") {
				t.Fatalf("error %q does not name the target", err)
			}
			return
		}
		if service == "" || strings.ContainsAny(service, "/ \t\r\n") {
			t.Fatalf("accepted service %q from %q", service, s)
		}
		q := u.Query()
		if sc.dc != q.Get("dc") || sc.tag != q.Get("tag") {
			t.Fatalf("scope %+v from %q", sc, s)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"policy":"round-robin"}`, `{"failover":"permissive","service":"svc-a"}`,
		`{"ejection":{"failures":-1,"duration":"10s"}}`, `{"maxCachedRoutes":3}`, `{"policy":1}`,
		`{"polcy":"x"}`, `[`, `{} {}`, `null`, `{"ejection":null}`,
	} {
		f.Add([]byte(s))
	}
	bb := NewBalancerBuilder()
	f.Fuzz(func(t *testing.T, js []byte) {
		cfg, err := bb.ParseConfig(json.RawMessage(js))
		if err != nil {
			if cfg != nil {
				t.Fatal("config with an error")
			}
			return
		}
		c := cfg.(*Config)
		if _, ok := parsePolicy(c.Policy.String()); !ok {
			t.Fatalf("accepted policy %v from %q", c.Policy, js)
		}
		if _, ok := parseFailover(c.Failover.String()); !ok {
			t.Fatalf("accepted failover %v from %q", c.Failover, js)
		}
		if c.MaxCachedRoutes < 0 || c.Ejection.Duration < 0 {
			t.Fatalf("accepted %+v from %q", c, js)
		}
	})
}

// FuzzInbound feeds arbitrary routing metadata through a hop: the server
// side must never panic, and what the client side sends on must read back
// without errors as the same route.
func FuzzInbound(f *testing.F) {
	for _, s := range [][4]string{
		{`{"svc-a":"1.1"}`, "", "1", "u1"},
		{"1.0;1.1", "1.0=90;1.1=10", "3", ""},
		{`{"svc-a":`, "=", "", "caf\xc3\xa9"},
		{"", "1.*=50;2.?=50", "2", "\x00"},
		{`{"a":"1","a":"2"}`, `{"svc-a":"1.0=100"}`, "x", "y"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	b, err := balancer.New(discovery.NewStatic(), balancer.WithRule(mustRule(f, chainRule)), balancer.WithForwardHeaders("x-user"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	ics := NewInterceptors(b)
	f.Fuzz(func(t *testing.T, version, weight, xyz, user string) {
		md := metadata.MD{}
		for k, v := range map[string]string{"n-d-version": version, "n-d-version-weight": weight, "xyz": xyz, "x-user": user} {
			if v != "" {
				md[k] = []string{v}
			}
		}
		in := ics.Inbound(metadata.NewIncomingContext(context.Background(), md), "/fuzz")
		out := ics.Outbound(in)
		sent, _ := metadata.FromOutgoingContext(out)
		h := http.Header{}
		for k, vs := range sent {
			if pick.IsRoutingKey(k) {
				h[http.CanonicalHeaderKey(k)] = vs
			} else if k != "x-user" && k != "xyz" {
				t.Fatalf("unexpected outgoing key %q", k)
			}
		}
		back, _, err := balancer.RouteFromHeader(h)
		if err != nil {
			t.Fatalf("outgoing routing metadata %v does not read back: %v", h, err)
		}
		want, _ := balancer.RouteFrom(out)
		if back.String() != want.String() {
			t.Fatalf("sent %s, context has %s", back.String(), want.String())
		}
	})
}
