package balancer

import (
	"net/http"
	"testing"

	"github.com/graylane/graylane/balancer/pick"
)

// TestTrustedEdgeDropsFoldedSpellings checks that a trusted edge drops the
// n_d_* spellings too: CGI and WSGI stacks behind it fold n_d_version and
// n-d-version into one variable (HTTP_N_D_VERSION), so a client could
// otherwise route itself through them.
func TestTrustedEdgeDropsFoldedSpellings(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0", "1.1"), WithRule(parseRule(t, "")), WithTrustedEdge(true),
		WithForwardHeaders("n_d_version", "x-user"))
	hdr := http.Header{
		"N_d_version": {"1.0"}, "n_d_env": {"x"}, "N-D_Region": {"r"}, "N_D-Zone": {"z"},
		"X-User": {"u1"}, "Nd-Other": {"kept"}, "N-Dx": {"kept"},
	}
	r, _, seen := inboundRoute(t, b, "/?xyz=2", hdr)
	for k := range seen {
		if pick.IsFoldedRoutingKey(k) {
			t.Errorf("handler behind a trusted edge sees %s", k)
		}
	}
	for _, k := range []string{"X-User", "Nd-Other", "N-Dx"} {
		if len(seen[k]) == 0 {
			t.Errorf("handler lost %s", k)
		}
	}
	if got := versionFor(r, "svc-b"); got != "1.1" {
		t.Errorf("route svc-b version %q, want the rule's 1.1", got)
	}
	if http.Header(r.Header).Get("N_d_version") != "" || len(r.Header["N_d_version"]) != 0 {
		t.Errorf("n_d_version travels as a business header: %v", r.Header)
	}
}

func TestIsRoutingName(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"n-d-version", true},
		{"N-D-Version", true},
		{"n_d_version", true},
		{"N_D_VERSION", true},
		{"n-d_x", true},
		{"n_d-", true},
		{"n-d", false},
		{"nd-version", false},
		{"n-e-version", false},
		{"x-n-d-version", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := pick.IsFoldedRoutingKey(tt.give); got != tt.want {
			t.Errorf("pick.IsFoldedRoutingKey(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
