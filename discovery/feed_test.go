package discovery

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// The check feed's filter matches exactly the watched names, whatever
// characters they hold.
func TestFeedFilterAlternation(t *testing.T) {
	names := []string{"orders", "a.b", "x+y", "pay(ments)", "back`tick"}
	for _, name := range names {
		var b strings.Builder
		writeAlternation(&b, []string{name, "other"})
		lit := b.String()
		var raw string
		if strings.HasPrefix(lit, "`") {
			raw = strings.Trim(lit, "`")
		} else {
			var err error
			if raw, err = strconv.Unquote(lit); err != nil {
				t.Fatalf("%q: literal %s: %v", name, lit, err)
			}
		}
		re := regexp.MustCompile(raw)
		if !re.MatchString(name) || !re.MatchString("other") {
			t.Errorf("%q: %s does not match the names", name, raw)
		}
		for _, not := range []string{name + "x", "x" + name, "othe", ""} {
			if re.MatchString(not) {
				t.Errorf("%q: %s matches %q", name, raw, not)
			}
		}
	}
}

// A service's fingerprint changes with its own checks only; node checks
// have their own.
func TestCheckFingerprints(t *testing.T) {
	checks := func(status string, modify uint64) api.HealthChecks {
		return api.HealthChecks{
			{Node: "n1", CheckID: "c1", ServiceID: "orders-1", ServiceName: "orders", Status: status, ModifyIndex: modify},
			{Node: "n1", CheckID: "c2", ServiceID: "pay-1", ServiceName: "pay", Status: "passing", ModifyIndex: 5},
			{Node: "n1", CheckID: "serfHealth", Status: "passing", ModifyIndex: 3},
		}
	}
	a, na, idx := checkFingerprints(checks("passing", 7))
	b, nb, _ := checkFingerprints(checks("critical", 8))
	if a["orders"] == b["orders"] {
		t.Error("a status change left the service's fingerprint alone")
	}
	if a["pay"] != b["pay"] || na != nb {
		t.Error("a change in orders changed another fingerprint")
	}
	if _, ok := idx[7]; !ok {
		t.Errorf("modify indexes %v miss 7", idx)
	}
	// Order does not matter.
	c := checks("passing", 7)
	c[0], c[1] = c[1], c[0]
	if r, _, _ := checkFingerprints(c); r["orders"] != a["orders"] || r["pay"] != a["pay"] {
		t.Error("fingerprints depend on the order of the checks")
	}
}
