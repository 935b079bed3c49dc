package discovery

import (
	"strconv"
	"testing"
	"time"

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

// An agent that comes back from a restart may answer the feed's queries at
// the very indexes it answered before it stopped (a dev agent restarted
// empty climbs back to them within a few writes), with a catalog that
// changed meanwhile. The feed's first answers after a failure must read
// the watched services again, whatever their indexes: nothing else would
// ever tell the watch that its instances changed.
func TestFeedRereadsAfterAgentCameBackAtSameIndex(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil))
	// Backoff pauses are recorded and cut short; the wait time is far
	// beyond the deadline below: only the feed's answers can wake it.
	rs := &recordingSleep{}
	c := NewConsul(f.client(t), WithWaitTime(10*time.Minute), withSleep(rs.sleep))
	defer c.Close()
	w := c.Watch("svc")
	waitFor(t, 30*time.Second, "the first answer", func() bool { return w.Snapshot().Len() == 1 })
	feedPaths := []string{"/v1/health/state/critical", "/v1/health/state/warning", "/v1/catalog/services"}
	for _, path := range feedPaths {
		f.waitBlocked(t, path)
	}
	f.mu.Lock()
	before := f.index
	f.mu.Unlock()

	f.down()
	for _, path := range feedPaths {
		waitFor(t, 30*time.Second, "a failed request on "+path, func() bool {
			for _, r := range f.requestsFor(path) {
				if r.failed {
					return true
				}
			}
			return false
		})
	}
	f.setService("svc",
		entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil),
		entry("b", "10.0.0.3", 8080, []string{"version=2.0"}, nil))
	reads := len(f.requestsFor("/v1/health/service/svc"))
	f.upAt(before)

	waitFor(t, 30*time.Second, "the instance added while the agent was away", func() bool { return w.Snapshot().Len() == 2 })
	if got := w.Snapshot().Version("2.0"); len(got) != 1 {
		t.Fatalf("version 2.0: %+v", got)
	}
	if n := len(f.requestsFor("/v1/health/service/svc")) - reads; n < 1 {
		t.Fatalf("%d reads of the service after the agent came back", n)
	}
}

// A service is first read only once the service feed has answered too: a
// read made before could miss a write that the service feed's first
// answer, a mere baseline, already holds, and nothing would read the
// service again.
func TestFeedFirstReadWaitsForServiceFeed(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil))
	release := f.hold(t, "/v1/catalog/services", false)
	c := NewConsul(f.client(t), WithWaitTime(10*time.Minute))
	defer c.Close()
	w := c.Watch("svc")
	f.waitBlocked(t, "/v1/health/state/critical")
	f.waitBlocked(t, "/v1/health/state/warning")
	waitFor(t, 30*time.Second, "the service feed's first request", func() bool { return len(f.requestsFor("/v1/catalog/services")) > 0 })
	// Give an early read its chance (the defect this guards against made
	// one at once); the test holds either way.
	select {
	case <-w.Ready():
	case <-time.After(200 * time.Millisecond):
	}
	// A write the service feed's first answer will already hold.
	f.setService("svc",
		entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil),
		entry("b", "10.0.0.3", 8080, []string{"version=2.0"}, nil))
	release()
	waitFor(t, 30*time.Second, "both instances", func() bool { return w.Snapshot().Len() == 2 })
}

// A change the service feed reports while a service's first read is under
// way is read after that read: the read may have been answered before the
// change. And a service is never read twice at once, so that a late answer
// cannot overwrite a newer one.
func TestFeedChangeDuringFirstReadIsReadAfterIt(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil))
	const read = "/v1/health/service/svc"
	// Reads answer the catalog as it was when they arrived, late.
	release := f.hold(t, read, true)
	c := NewConsul(f.client(t), WithWaitTime(10*time.Minute))
	defer c.Close()
	w := c.Watch("svc")
	waitFor(t, 30*time.Second, "the first read", func() bool { return len(f.requestsFor(read)) > 0 })
	f.waitBlocked(t, "/v1/catalog/services")
	f.setService("svc",
		entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil),
		entry("b", "10.0.0.3", 8080, []string{"version=2.0"}, nil))
	// The service feed has seen the change while the read is held.
	f.waitBlocked(t, "/v1/catalog/services")
	release()
	waitFor(t, 30*time.Second, "the instance added during the first read", func() bool { return w.Snapshot().Len() == 2 })
	if n := f.maxInflightOf(read); n != 1 {
		t.Fatalf("%d reads of one service at once", n)
	}
}
