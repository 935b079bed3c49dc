package pick

import (
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
)

// The n-d-* headers a Nepxion hop forwards although no route type of
// graylane reads them (Nepxion's DiscoveryConstant, Discovery 6.x.x), and
// one a newer Nepxion might add.
var passedHeaders = map[string]string{
	"n-d-region-transfer":  "dev",
	"n-d-region-failover":  "qa",
	"n-d-env-failover":     "common",
	"n-d-zone-failover":    "z2",
	"n-d-address-failover": "10.0.0.9:8080",
	"n-d-group":            "g1",
	"n-d-something-new":    "x",
}

// TestExtractPassesUnknownHeaders checks that every n-d-* header travels
// on as it arrived, whether or not a route type reads it, except the
// n-d-service-* identity headers (Nepxion's
// AbstractStrategyInterceptor.isHeaderContainsExcludeInner).
func TestExtractPassesUnknownHeaders(t *testing.T) {
	in := mapCarrier{"n-d-version": "1.1", "n-d-service-id": "gateway", "n-d-service-version": "9",
		"x-other": "o", "n-d-blank": " "}
	for k, v := range passedHeaders {
		in[k] = v
	}
	r, ok, err := Extract(in)
	if !ok || err != nil {
		t.Fatalf("Extract: %v %v", ok, err)
	}
	out := mapCarrier{"n-d-service-id": "stale"}
	Inject(&r, out)
	for k, v := range in {
		want := v
		switch {
		case !IsRoutingKey(k), k == "n-d-blank":
			want = ""
		case k == "n-d-service-id":
			want = "stale" // Inject leaves identity to IdentityHeaders
		case isIdentityKey(k):
			want = ""
		}
		if got := out.Get(k); got != want {
			t.Errorf("%s: sent %q, want %q", k, got, want)
		}
	}
	for k, v := range passedHeaders {
		// A type the route type table has since learnt is parsed, not
		// passed: either way it travels.
		if got, passed := r.Passed(k); passed && got != v {
			t.Errorf("Passed(%s) = %q", k, got)
		}
	}
	if _, passed := r.Passed("N-D-Service-Id"); passed {
		t.Error("the route passes an identity header on")
	}
	if _, passed := r.Passed("n-d-version"); passed {
		t.Error("a parsed header is also passed as it is")
	}

	// Passed headers alone decide nothing, but still travel.
	r, ok, err = Extract(mapCarrier{"n-d-something-new": "x"})
	if ok || err != nil || !r.PassesHeaders() {
		t.Fatalf("Extract: ok %v err %v passes %v", ok, err, r.PassesHeaders())
	}
	if got := r.String(); got != "n-d-something-new=x" {
		t.Errorf("String = %q", got)
	}
	// A decision made at this hop keeps what arrived.
	var decided Route
	decided.Set(rule.TypeVersion, rule.PlainValue("1.0"))
	decided.Override(&r)
	if v, _ := decided.Passed("n-d-something-new"); v != "x" {
		t.Errorf("Override dropped the passed header: %s", decided.String())
	}
}

func TestIsPassedKey(t *testing.T) {
	for _, tt := range []struct {
		give string
		want bool
	}{
		{"n-d-something-new", true}, {"N-D-Something-New", true}, {"n-d-x", true},
		{"n-d-version", false}, {"N-D-Version", false}, {"n-d-env", false},
		{"n-d-service-id", false}, {"N-D-Service-Zone", false}, {"n-d-service-other", true},
		{"n_d_group", false}, {"x-n-d-group", false},
	} {
		if got := IsPassedKey(tt.give); got != tt.want {
			t.Errorf("IsPassedKey(%q) = %v", tt.give, got)
		}
	}
	// Whatever the table holds, a header it reads is parsed, not passed.
	for ty := range rule.NumTypes {
		if h := ty.HeaderName(); h != "" && IsPassedKey(h) {
			t.Errorf("%s is passed as it is although the table reads it", h)
		}
	}
}

// TestIdentityHeaders checks what a hop sends about itself, after
// Nepxion's FeignStrategyInterceptor.applyInnerHeader (Discovery 6.x.x):
// empty fields and the "default" value are not sent, the service type
// defaults to "service", and a previous hop's identity never stays.
func TestIdentityHeaders(t *testing.T) {
	id := Identity{Service: "svc-a", ID: "svc-a-1", Address: "10.0.0.5:8080", Version: "1.1",
		Region: "default", Group: "g"}
	c := mapCarrier{"n-d-service-id": "gateway", "n-d-service-zone": "z9", "n-d-service-region": "r9", "x": "y"}
	id.Headers().Inject(c)
	want := mapCarrier{"n-d-service-id": "svc-a", "n-d-service-address": "10.0.0.5:8080",
		"n-d-service-version": "1.1", "n-d-service-group": "g", "n-d-service-type": "service", "x": "y"}
	if len(c) != len(want) {
		t.Errorf("carrier %v, want %v", c, want)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %q, want %q", k, c[k], v)
		}
	}
	// The anonymous caller sends none and leaves none behind.
	var anon Identity
	if anon.Headers() != nil {
		t.Error("the zero identity has headers")
	}
	anon.Headers().Inject(c)
	if len(c) != 1 || c["x"] != "y" {
		t.Errorf("anonymous hop left %v", c)
	}
}

// BenchmarkExtractPassed measures reading a route that carries headers no
// route type reads, over a carrier that lists them.
func BenchmarkExtractPassed(b *testing.B) {
	c := mapCarrier{"n-d-version": "1.1", "n-d-region-failover": "qa", "n-d-group": "g1", "x-user": "u7"}
	b.ReportAllocs()
	for b.Loop() {
		if r, ok, err := Extract(c); !ok || err != nil || !r.PassesHeaders() {
			b.Fatal(ok, err)
		}
	}
}

// FuzzPassed checks that any n-d-* key and value cross a hop as they
// arrived, unless a route type reads the key (then it travels parsed) or it
// is an identity header (then it does not travel), and that nothing panics.
func FuzzPassed(f *testing.F) {
	f.Add("n-d-region-failover", "qa")
	f.Add("N-D-Service-Id", "gw")
	f.Add("n-d-version", "{")
	f.Add("n-d-", " ")
	f.Add("n-d-\xff", "\x00")
	f.Fuzz(func(t *testing.T, key, value string) {
		in := mapCarrier{"n-d-version": "1.0"}
		in.Set(key, value)
		r, _, _ := Extract(in)
		out := mapCarrier{}
		Inject(&r, out)
		got, passed := r.Passed(key)
		switch {
		case !IsPassedKey(key) || strings.TrimSpace(value) == "":
			if passed && !strings.EqualFold(key, "n-d-version") {
				t.Fatalf("%q passed although not to pass", key)
			}
		case got != value || out.Get(key) != value:
			t.Fatalf("%q=%q passed as %q, sent %q", key, value, got, out.Get(key))
		}
		for _, k := range out.Keys() {
			if isIdentityKey(k) {
				t.Fatalf("identity header %q travels on", k)
			}
		}
	})
}
