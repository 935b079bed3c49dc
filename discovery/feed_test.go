package discovery

import (
	"strconv"
	"testing"

	"github.com/hashicorp/consul/api"
)

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
	a, na, idx := checkFingerprints(checks("passing", 7), nil)
	b, nb, _ := checkFingerprints(checks("critical", 8), nil)
	if a["orders"] == b["orders"] {
		t.Error("a status change left the service's fingerprint alone")
	}
	if a["pay"] != b["pay"] || na != nb {
		t.Error("a change in orders changed another fingerprint")
	}
	if _, ok := idx[7]; !ok {
		t.Errorf("modify indexes %v miss 7", idx)
	}
	// Node checks count for the nodes asked for only.
	if _, n, _ := checkFingerprints(checks("passing", 7), map[string]struct{}{"n2": {}}); n == na {
		t.Error("node checks of another node counted")
	}
	// Order does not matter.
	c := checks("passing", 7)
	c[0], c[1] = c[1], c[0]
	if r, _, _ := checkFingerprints(c, nil); r["orders"] != a["orders"] || r["pay"] != a["pay"] {
		t.Error("fingerprints depend on the order of the checks")
	}
}

// The feed fingerprints its failing checks on every answer: a few hundred
// failing checks must cost well under a millisecond.
func BenchmarkCheckFingerprints(b *testing.B) {
	var checks api.HealthChecks
	for s := range 20 {
		for i := range 10 {
			checks = append(checks, &api.HealthCheck{Node: "node-" + strconv.Itoa(i), CheckID: "c-" + strconv.Itoa(s) + "-" + strconv.Itoa(i),
				ServiceID: "svc-" + strconv.Itoa(s) + "-" + strconv.Itoa(i), ServiceName: "svc-" + strconv.Itoa(s),
				Status: "critical", ModifyIndex: uint64(100 + s*10 + i)})
		}
	}
	nodes := map[string]struct{}{"node-1": {}}
	b.ReportAllocs()
	for b.Loop() {
		checkFingerprints(checks, nodes)
	}
}
