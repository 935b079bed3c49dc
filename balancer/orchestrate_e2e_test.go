package balancer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	drainpkg "github.com/graylane/graylane/balancer/drain"
	"github.com/graylane/graylane/rule"
)

// The balancer is the rule source of a drain gate.
var _ drainpkg.RuleSource = (*Balancer)(nil)

// routeVersions returns the versions of svc-a and svc-b in the route with
// index i of r, "" when absent.
func routeVersions(r *rule.Rule, i int) (a, b string) {
	if r == nil || len(r.Release.Routes) <= i {
		return "", ""
	}
	a, _ = r.Release.Routes[i].Value.For("svc-a")
	b, _ = r.Release.Routes[i].Value.For("svc-b")
	return a, b
}

// sample is one answered request of the background traffic.
type sample struct {
	xyz  string
	sent time.Time
	res  chainResult
}

// TestE2ELiveOrchestration publishes a spec once, with svc-a and svc-b at
// 1.0 only, then releases 1.1 and retires 1.0 under running traffic: the
// rule follows the live versions each time (a retirement after the expansion
// hold), and no request fails. A drain gate for svc-a 1.0 over the gateway's
// balancer drains
// when the rule stops routing to 1.0.
func TestE2ELiveOrchestration(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against a real Consul agent")
	}
	limit := 30 * time.Second // a deadline, not a pass mark: times are logged
	// A retired version stays in the expansion for the hold; the removal
	// grace covers it, so requests routed to it meanwhile still land.
	hold := 2 * time.Second
	env := newE2E(t, []string{"1.0"}, WithRemovalGrace(10*time.Second), WithExpansionHold(hold))
	env.putRule(t, mixedSpec)
	waitGatewayRule(t, env.gwBal, "the spec expanded with 1.0 only", func(r *rule.Rule) bool {
		a, b := routeVersions(r, 1)
		return a == "1.0" && b == "1.0"
	})
	gate := drainpkg.NewGate("svc-a", "1.0", env.gwBal)
	defer gate.Close()
	if !gate.Receiving() {
		t.Fatalf("gate for svc-a 1.0 drained while 1.0 is all there is: %+v", gate.Status())
	}

	// Traffic throughout: blue-green both ways and the default gray split.
	var mu sync.Mutex
	var samples []sample
	stop := make(chan struct{})
	var waits []func() (int64, int64, error)
	for _, xyz := range []string{"1", "2", ""} {
		waits = append(waits, env.load(3, xyz, stop, func(sent time.Time, r chainResult) {
			mu.Lock()
			samples = append(samples, sample{xyz, sent, r})
			mu.Unlock()
		}))
	}
	stopped := false
	stopLoad := func() (ok, failed int64, first error) {
		if !stopped {
			close(stop)
			stopped = true
		}
		for _, w := range waits {
			o, f, err := w()
			ok, failed = ok+o, failed+f
			if first == nil {
				first = err
			}
		}
		return ok, failed, first
	}
	defer stopLoad()
	time.Sleep(200 * time.Millisecond)

	// Release 1.1: both services start two instances each.
	started := time.Now()
	for n := range 2 {
		startE2ECheck(t, env.agent.Client(), "svc-b", "1.1", n, true, env.svcB)
		startE2ECheck(t, env.agent.Client(), "svc-a", "1.1", n, true, env.svcA)
	}
	registered := time.Now()
	deadline := started.Add(10 * time.Second)
	for {
		a, b := routeVersions(env.gwBal.Rule(), 1)
		if a == "1.1" && b == "1.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route-1 never became 1.1: svc-a %q svc-b %q", a, b)
		}
		time.Sleep(time.Millisecond)
	}
	released := time.Now()
	t.Logf("1.1 started: the applied rule had route-1 = 1.1 %v after the first registration began (registering took %v)",
		released.Sub(started).Round(time.Millisecond), registered.Sub(started).Round(time.Millisecond))
	if a, b := routeVersions(env.gwBal.Rule(), 0); a != "1.0" || b != "1.0" {
		t.Errorf("route-0 is %s/%s, want 1.0 while 1.0 runs", a, b)
	}
	waitSample(t, &mu, &samples, released, "xyz=2 traffic on 1.1", func(s sample) bool { return s.xyz == "2" })

	// Retire 1.0: deregister its instances, which keep serving for a while,
	// as a graceful shutdown does.
	olds := append(servers(env, "svc-a", "1.0"), servers(env, "svc-b", "1.0")...)
	if len(olds) != 4 {
		t.Fatalf("%d servers at 1.0, want 4", len(olds))
	}
	removed := time.Now()
	for _, s := range olds {
		if err := s.reg.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deregistered := time.Now()
	deadline = removed.Add(10 * time.Second)
	for {
		a, b := routeVersions(env.gwBal.Rule(), 0)
		if a == "1.1" && b == "1.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route-0 never moved to 1.1: svc-a %q svc-b %q", a, b)
		}
		time.Sleep(time.Millisecond)
	}
	retired := time.Now()
	t.Logf("1.0 deregistered: re-orchestrated %v after the first deregistration began (deregistering took %v)",
		retired.Sub(removed).Round(time.Millisecond), deregistered.Sub(removed).Round(time.Millisecond))
	gctx, gcancel := context.WithTimeout(context.Background(), limit)
	defer gcancel()
	if err := gate.Wait(gctx, false); err != nil {
		t.Errorf("gate for svc-a 1.0 still receiving %v after the rule stopped routing to 1.0: %+v", limit, gate.Status())
	}
	if st := env.gwBal.Debug(); st.Rule == nil || !slices.Equal(st.Rule.Versions["svc-a"], []string{"1.1"}) {
		t.Errorf("debug view: rule orchestrated with %v", st.Rule)
	}
	waitSample(t, &mu, &samples, retired, "xyz=1 traffic on 1.1", func(s sample) bool { return s.xyz == "1" })
	// The old processes stop once nothing routes to them any more.
	time.Sleep(300 * time.Millisecond)
	for _, s := range olds {
		_ = s.srv.Close()
	}
	time.Sleep(300 * time.Millisecond)

	okN, failed, err := stopLoad()
	t.Logf("%d requests during the release, %d failed", okN, failed)
	if failed > 0 {
		t.Errorf("%d requests failed; first: %v", failed, err)
	}
	// Every request decided after a change follows it.
	mu.Lock()
	defer mu.Unlock()
	counts := map[string]int{}
	for _, s := range samples {
		want := "1.0"
		switch {
		case s.sent.After(retired):
			want = "1.1"
		case s.sent.After(removed):
			continue // decided while 1.0 was leaving: either
		case s.sent.After(released) && s.xyz == "2":
			want = "1.1"
		case s.sent.Before(started) || s.xyz != "2":
			// 1.0 everywhere: blue-green to the old version, gray default
			// 100/0, and everything before 1.1 started.
		default:
			continue // xyz=2 while 1.1 was arriving: either
		}
		if s.res.a != want || s.res.b != want {
			t.Errorf("xyz=%q sent %v after 1.1 started: chain %s/%s, want %s", s.xyz,
				s.sent.Sub(started).Round(time.Millisecond), s.res.a, s.res.b, want)
			break
		}
		counts[s.xyz+"@"+want]++
	}
	t.Logf("checked chains by xyz@version: %v", counts)
	for _, k := range []string{"1@1.0", "2@1.0", "@1.0", "2@1.1", "1@1.1", "@1.1"} {
		if counts[k] == 0 {
			t.Errorf("no request checked for %s", k)
		}
	}
}

// servers returns the instances of service at version that newE2E started.
func servers(env *e2eEnv, service, version string) []*e2eServer {
	var out []*e2eServer
	for _, s := range env.started {
		if s.service == service && s.version == version {
			out = append(out, s)
		}
	}
	return out
}

// waitSample waits until a request matching ok, sent after since, answers
// from 1.1 at both hops.
func waitSample(t *testing.T, mu *sync.Mutex, samples *[]sample, since time.Time, what string, ok func(sample) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		found := false
		for _, s := range *samples {
			if s.sent.After(since) && ok(s) && s.res.a == "1.1" && s.res.b == "1.1" {
				found = true
				break
			}
		}
		mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
