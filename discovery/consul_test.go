package discovery

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestConsulWatchPublishesChanges(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc",
		entry("a", "10.0.0.2", 8080, []string{"version=1.0", "zone=z1"}, nil),
		entry("b", "", 8081, nil, map[string]string{"version": "2.0", "region": "r1"}),
	)
	// A wait time far beyond the deadlines below: changes must wake the
	// blocked query.
	c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(10*time.Minute))
	defer c.Close()

	w := c.Watch("svc")
	if c.Watch("svc") != w {
		t.Fatal("second Watch returned another *Watch")
	}
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("watch not ready")
	}
	s := w.Snapshot()
	if got, want := s.Versions, []string{"1.0", "2.0"}; !slices.Equal(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	if got := s.Version("2.0")[0]; got.Address != "10.0.0.1" || got.Region != "r1" {
		t.Fatalf("instance b = %+v, want the node address and region r1", got)
	}
	if got := s.Version("1.0")[0]; got.Zone != "z1" || got.HostPort() != "10.0.0.2:8080" {
		t.Fatalf("instance a = %+v", got)
	}

	ch, stop := w.Subscribe()
	defer stop()
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil))
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no notification after a change")
	}
	if got := w.Snapshot().Len(); got != 1 {
		t.Fatalf("after removal: %d instances, want 1", got)
	}

	// A change elsewhere in the catalog wakes the query with the same data:
	// nothing is published.
	before := w.Snapshot()
	f.waitBlocked(t, "/v1/health/service/svc")
	n := len(f.requestsFor("/v1/health/service/svc"))
	f.touch()
	waitFor(t, 30*time.Second, "the woken query's answer handled", func() bool { return len(f.requestsFor("/v1/health/service/svc")) > n })
	select {
	case <-ch:
		t.Fatal("identical answer published")
	default:
	}
	if w.Snapshot() != before {
		t.Fatal("snapshot replaced by an identical answer")
	}
}

func TestConsulWatchSendsIndexAndWait(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, nil, nil))
	c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(300*time.Millisecond), WithStale(), WithAgentCache(), WithTag("blue"), WithDatacenter("dc9"), WithToken("tok"))
	w := c.Watch("svc")
	<-w.Ready()
	waitFor(t, 30*time.Second, "three requests", func() bool { return len(f.requestsFor("/v1/health/service/svc")) >= 3 })
	c.Close()
	reqs := f.requestsFor("/v1/health/service/svc")
	f.mu.Lock()
	index := f.index
	f.mu.Unlock()
	if reqs[0].Index != "" {
		t.Errorf("first request sent index %q, want none", reqs[0].Index)
	}
	for i, r := range reqs[1:] {
		if r.Index != strconv.FormatUint(index, 10) {
			t.Errorf("request %d: index %q, want %d", i+1, r.Index, index)
		}
	}
	for i, r := range reqs {
		if r.Wait != "300ms" {
			t.Errorf("request %d: wait %q, want 300ms", i, r.Wait)
		}
	}
}

func TestConsulQueryOptions(t *testing.T) {
	c := NewConsul(nil, WithWaitTime(time.Second), WithStale(), WithAgentCache(), WithTag("blue"), WithDatacenter("dc9"), WithToken("tok"))
	defer c.Close()
	q := c.opts.queryOptions(true)
	if !q.AllowStale || !q.UseCache || q.Datacenter != "dc9" || q.Token != "tok" || q.WaitTime != time.Second || c.opts.tag != "blue" {
		t.Fatalf("query options = %+v", q)
	}
	if kv := c.opts.queryOptions(false); kv.UseCache {
		t.Fatal("KV queries must not ask for the agent cache")
	}
	// Without a client the watch is never ready, and nothing panics.
	select {
	case <-c.Watch("svc").Ready():
		t.Fatal("watch without a client became ready")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestConsulWatchIndexReset(t *testing.T) {
	tests := []struct {
		name string
		give func(real uint64) uint64 // the index Consul answers
		want string                   // the index blocking resumes at
	}{
		// Consul's guidance: an index that goes backwards restarts the
		// loop with one read at once, then blocking resumes at the new
		// index.
		{name: "backwards", give: func(uint64) uint64 { return 3 }, want: "3"},
		// 0 is backwards too; then index 0 becomes 1: one read at once,
		// never a hot loop of them.
		{name: "zero", give: func(uint64) uint64 { return 0 }, want: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConsul(t)
			f.setService("svc", entry("a", "10.0.0.2", 8080, nil, nil))
			c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(200*time.Millisecond), WithRateLimit(20*time.Millisecond, 1))
			defer c.Close()
			w := c.Watch("svc")
			<-w.Ready()
			waitFor(t, 30*time.Second, "a blocking request", func() bool { return len(f.requestsFor("/v1/health/service/svc")) >= 2 })
			n := len(f.requestsFor("/v1/health/service/svc"))
			f.setIndexOverride(tt.give)
			waitFor(t, 30*time.Second, "request with index "+tt.want, func() bool {
				reqs := f.requestsFor("/v1/health/service/svc")
				return reqs[len(reqs)-1].Index == tt.want
			})
			rereads := 0
			for i, r := range f.requestsFor("/v1/health/service/svc")[1:] {
				if r.Index == "0" {
					t.Fatalf("request %d sent index 0", i+1)
				}
				if r.Index == "" {
					if i+1 < n {
						t.Fatalf("request %d: a non-blocking read before the index changed", i+1)
					}
					rereads++
				}
			}
			if rereads != 1 {
				t.Fatalf("%d non-blocking reads after the index changed, want 1", rereads)
			}
			if w.Snapshot().Len() != 1 {
				t.Fatalf("snapshot lost its instance: %d", w.Snapshot().Len())
			}
		})
	}
}

func TestConsulWatchRateLimited(t *testing.T) {
	// Consul answering at once every time (a churning catalog: the index
	// grows with every answer) must not turn the loop into a hot loop:
	// after the burst, requests go out one interval apart. The watch runs
	// on a clock that moves only when the loop sleeps, and the fake agent
	// stamps requests with it, so the spacing is exact under any load.
	const every = 50 * time.Millisecond
	for _, burst := range []int{1, 3} {
		t.Run("burst="+strconv.Itoa(burst), func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeConsul(t)
			f.now = clk.now
			n := uint64(100)
			f.setIndexOverride(func(uint64) uint64 { n++; return n })
			f.setService("svc", entry("a", "10.0.0.2", 8080, nil, nil))
			c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(time.Second), WithRateLimit(every, burst),
				withNow(clk.now), withSleep(clk.sleep))
			<-c.Watch("svc").Ready()
			waitFor(t, 30*time.Second, "20 requests", func() bool { return len(f.requestsFor("/v1/health/service/svc")) >= 20 })
			c.Close()
			reqs := f.requestsFor("/v1/health/service/svc")
			for i := 1; i < len(reqs); i++ {
				gap := reqs[i].At.Sub(reqs[i-1].At)
				want := every
				if i < burst {
					want = 0
				}
				if gap != want {
					t.Fatalf("requests %d and %d %s apart on the watch's clock, want %s", i-1, i, gap, want)
				}
			}
			for i, d := range clk.slept() {
				if d != every {
					t.Fatalf("pause %d = %s, want %s (the limiter's interval)", i, d, every)
				}
			}
		})
	}
}

func TestConsulWatchBackoffKeepsSnapshot(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil))
	rs := &recordingSleep{}
	c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(200*time.Millisecond), WithRateLimit(0, 1),
		WithBackoff(100*time.Millisecond, 800*time.Millisecond), withSleep(rs.sleep), withJitter(func() float64 { return 1 }))
	defer c.Close()
	w := c.Watch("svc")
	<-w.Ready()
	f.setFailing(true)
	waitFor(t, 30*time.Second, "six failures", func() bool { return len(rs.list()) >= 6 })
	if got := w.Snapshot().Len(); got != 1 {
		t.Fatalf("snapshot emptied while Consul fails: %d instances", got)
	}
	want := []time.Duration{100, 200, 400, 800, 800, 800}
	for i, d := range rs.list()[:6] {
		if d != want[i]*time.Millisecond {
			t.Fatalf("pause %d = %s, want %s (all: %v)", i, d, want[i]*time.Millisecond, rs.list())
		}
	}
	f.setFailing(false)
	f.setService("svc", entry("a", "10.0.0.2", 8080, []string{"version=1.0"}, nil), entry("b", "10.0.0.3", 8080, nil, nil))
	waitFor(t, 30*time.Second, "recovery", func() bool { return w.Snapshot().Len() == 2 })
	// Every request after a failure reads at once (no index).
	reqs := f.requestsFor("/v1/health/service/svc")
	for i := 1; i < len(reqs); i++ {
		if reqs[i-1].failed && reqs[i].Index != "" {
			t.Fatalf("request %d after a failure sent index %q, want a non-blocking read", i, reqs[i].Index)
		}
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	o := newOptions([]Option{WithBackoff(100*time.Millisecond, time.Second), withJitter(func() float64 { return 0 })})
	tests := []struct {
		give int
		want time.Duration
	}{
		{give: 1, want: 50 * time.Millisecond},
		{give: 2, want: 100 * time.Millisecond},
		{give: 4, want: 400 * time.Millisecond},
		{give: 5, want: 500 * time.Millisecond},
		{give: 1000, want: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := o.backoff(tt.give); got != tt.want {
			t.Errorf("backoff(%d) with jitter 0 = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestConsulWatchCloseStopsBlockedQuery(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc", entry("a", "10.0.0.2", 8080, nil, nil))
	// Close must cut the blocked query short: with a 10-minute wait, a
	// Close that waited for the answer would not return before the
	// deadline below.
	c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(10*time.Minute))
	w := c.Watch("svc")
	<-w.Ready()
	waitFor(t, 30*time.Second, "a blocking request", func() bool { return len(f.requestsFor("/v1/health/service/svc")) >= 2 })
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close waited for the blocked query")
	}
	if w.Snapshot().Len() != 1 {
		t.Fatal("watch lost its snapshot on Close")
	}
	late := c.Watch("other")
	select {
	case <-late.Ready():
		t.Fatal("a watch made after Close became ready")
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestConsulWatchSkipsBadEntries(t *testing.T) {
	f := newFakeConsul(t)
	f.setService("svc",
		entry("good", "10.0.0.2", 8080, []string{"weight=abc"}, nil),
		entry("noport", "10.0.0.3", 0, nil, nil),
		&api.ServiceEntry{},
	)
	c := NewConsul(f.client(t), WithWatchPerService(), WithWaitTime(time.Second))
	defer c.Close()
	w := c.Watch("svc")
	<-w.Ready()
	s := w.Snapshot()
	if s.Len() != 1 || s.Instances[0].ID != "good" || s.Instances[0].Weight != 0 {
		t.Fatalf("snapshot = %+v, want only 'good' with the default weight", s.Instances)
	}
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	ms := time.Millisecond
	b := newTokenBucket(100*ms, 3, t0)
	tests := []struct {
		give time.Duration // when, after t0
		want time.Duration // the wait
	}{
		{give: 0, want: 0},
		{give: 0, want: 0},
		{give: 0, want: 0},        // burst of 3 spent
		{give: 0, want: 100 * ms}, // then one per 100ms
		{give: 100 * ms, want: 100 * ms},
		{give: 200 * ms, want: 100 * ms},
		{give: 1000 * ms, want: 0}, // idle 700ms: full again
		{give: 1000 * ms, want: 0},
		{give: 1000 * ms, want: 0},
		{give: 1050 * ms, want: 50 * ms},
	}
	for i, tt := range tests {
		if got := b.take(t0.Add(tt.give)); got != tt.want {
			t.Fatalf("take %d at %s: wait %s, want %s", i, tt.give, got, tt.want)
		}
	}
	if got := newTokenBucket(0, 1, t0).take(t0); got != 0 {
		t.Fatalf("disabled bucket waits %s", got)
	}
}
