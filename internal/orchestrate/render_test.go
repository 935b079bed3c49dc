package orchestrate

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

const testSpec = `service: [svc-a, svc-b]
blueGreen:
  - expression: "#H['xyz'] == '1'"
    route: green
  - expression: "#H['xyz'] == '2'"
    route: blue
gray:
  - weight: [90, 10]
`

func mustSpec(t testing.TB, s string) *rule.Spec {
	t.Helper()
	spec, err := rule.ParseSpec([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func instances(service string, versions ...string) []discovery.Instance {
	out := make([]discovery.Instance, len(versions))
	for i, v := range versions {
		out[i] = discovery.Instance{ID: service + "-" + v, Service: service, Address: "127.0.0.1", Port: 9000 + i, Version: v}
	}
	return out
}

// route returns what route id gives service in r.
func route(t testing.TB, r *rule.Rule, id, service string) string {
	t.Helper()
	for _, rt := range r.Release.Routes {
		if rt.ID == id {
			s, _ := rt.Value.For(service)
			return s
		}
	}
	t.Fatalf("no route %s", id)
	return ""
}

func TestRender(t *testing.T) {
	spec := mustSpec(t, testSpec)
	inv := rule.Inventory{
		"svc-a": {{Version: "1.1"}, {Version: "1.0"}},
		"svc-b": {{Version: "1.0"}, {Version: "1.1"}, {Version: "1.2"}},
	}
	rd, err := Render(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	if got := route(t, rd.Rule, "route-0", "svc-b"); got != "1.0" {
		t.Errorf("route-0 svc-b = %q", got)
	}
	if got := route(t, rd.Rule, "route-1", "svc-b"); got != "1.1;1.2" {
		t.Errorf("route-1 svc-b = %q", got)
	}
	if want, _ := rule.EncodeXML(rd.Rule); string(want) != string(rd.XML) {
		t.Errorf("XML is not the rule's encoding")
	}
	if len(rd.Pending) != 0 {
		t.Errorf("pending %v", rd.Pending)
	}

	// A service without instances is left out, the others are rendered.
	delete(inv, "svc-b")
	rd, err = Render(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Pending) != 1 || rd.Pending[0] != "svc-b" || strings.Contains(string(rd.XML), "svc-b") {
		t.Errorf("pending %v, rule %s", rd.Pending, rd.XML)
	}

	// No service with instances: nothing to render.
	if _, err := Render(spec, rule.Inventory{}); !errors.Is(err, rule.ErrNoInstances) {
		t.Errorf("empty inventory: %v", err)
	}
	if _, err := Render(nil, inv); err == nil {
		t.Error("nil spec rendered")
	}
}

// fakeClock is an injected clock whose timers fire when it is advanced.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, tm)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !tm.stopped
		tm.stopped = true
		return was
	}
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, tm := range c.timers {
		if !tm.stopped && !tm.at.After(c.now) {
			tm.stopped = true
			due = append(due, tm.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// testLeader returns a leader of spec over reg, with the fake clock and
// the given hold, without Consul (render only).
func testLeader(t *testing.T, spec string, reg discovery.Registry, clock *fakeClock, d time.Duration) *leader {
	t.Helper()
	cl, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	o, err := New(cl, "g-svc-a", WithRegistry(reg), WithExpansionHold(d), withClock(clock.Now, clock.AfterFunc))
	if err != nil {
		t.Fatal(err)
	}
	return &leader{o: o, reg: reg, notify: make(chan struct{}, 1), hold: rule.Hold{D: o.o.hold}, spec: mustSpec(t, spec), watched: map[string]bool{}}
}

func mustRender(t *testing.T, l *leader) (*Rendering, map[string][]string) {
	t.Helper()
	rd, held, ok := l.render()
	if !ok {
		t.Fatal("nothing rendered")
	}
	return rd, held
}

// A version missing from the catalog for less than the hold keeps its
// side: a momentary partial inventory never makes the new version route-0.
func TestHoldKeepsSides(t *testing.T) {
	reg := discovery.NewStatic()
	defer reg.Close()
	reg.Set("svc-a", instances("svc-a", "1.0", "1.1")...)
	reg.Set("svc-b", instances("svc-b", "1.0", "1.1")...)
	clock := newFakeClock()
	const hold = 30 * time.Second
	l := testLeader(t, testSpec, reg, clock, hold)

	first, _ := mustRender(t, l)
	if got := route(t, first.Rule, "route-0", "svc-b"); got != "1.0" {
		t.Fatalf("route-0 svc-b = %q", got)
	}

	// svc-b 1.0 re-registers late: only 1.1 is listed for a moment.
	reg.Set("svc-b", instances("svc-b", "1.1")...)
	clock.Advance(hold - time.Second)
	rd, held := mustRender(t, l)
	if string(rd.XML) != string(first.XML) {
		t.Errorf("partial inventory changed the rule:\n%s\nwant\n%s", rd.XML, first.XML)
	}
	if len(held["svc-b"]) != 1 || held["svc-b"][0] != "1.0" {
		t.Errorf("held %v", held)
	}
	// It comes back: nothing changed, nothing held.
	reg.Set("svc-b", instances("svc-b", "1.0", "1.1")...)
	clock.Advance(2 * time.Second)
	if rd, held = mustRender(t, l); string(rd.XML) != string(first.XML) || held != nil {
		t.Errorf("after return: held %v, rule\n%s", held, rd.XML)
	}

	// Retired for good: it leaves when the hold ends, woken by the timer
	// with the catalog quiet.
	reg.Set("svc-b", instances("svc-b", "1.1")...)
	mustRender(t, l)
	select {
	case <-l.notify:
		t.Fatal("woken before the hold ended")
	default:
	}
	clock.Advance(hold)
	select {
	case <-l.notify:
	default:
		t.Fatal("no wake-up at the end of the hold")
	}
	rd, held = mustRender(t, l)
	if got := route(t, rd.Rule, "route-0", "svc-b"); got != "1.1" || held != nil {
		t.Errorf("after the hold: route-0 svc-b = %q, held %v", got, held)
	}

	// A new version joins at once.
	reg.Set("svc-a", instances("svc-a", "1.0", "1.1", "1.2")...)
	rd, _ = mustRender(t, l)
	if got := route(t, rd.Rule, "route-1", "svc-a"); got != "1.1;1.2" {
		t.Errorf("route-1 svc-a = %q", got)
	}
}

// With no hold, a missing version leaves at once (the control for the
// test above: the hold is what keeps the sides).
func TestNoHold(t *testing.T) {
	reg := discovery.NewStatic()
	defer reg.Close()
	reg.Set("svc-a", instances("svc-a", "1.0", "1.1")...)
	reg.Set("svc-b", instances("svc-b", "1.0", "1.1")...)
	l := testLeader(t, testSpec, reg, newFakeClock(), -1)
	mustRender(t, l)
	reg.Set("svc-b", instances("svc-b", "1.1")...)
	rd, _ := mustRender(t, l)
	if got := route(t, rd.Rule, "route-0", "svc-b"); got != "1.1" {
		t.Errorf("route-0 svc-b = %q", got)
	}
}

// A term that starts while a version is missing holds the versions the
// current rendering names; a rule written by hand seeds nothing.
func TestSeedFromRendering(t *testing.T) {
	reg := discovery.NewStatic()
	defer reg.Close()
	reg.Set("svc-a", instances("svc-a", "1.0", "1.1")...)
	reg.Set("svc-b", instances("svc-b", "1.0", "1.1")...)
	clock := newFakeClock()
	full, _ := mustRender(t, testLeader(t, testSpec, reg, clock, 0))

	reg.Set("svc-b", instances("svc-b", "1.1")...)
	for _, tt := range []struct {
		flags uint64
		want  string
	}{
		{RenderedFlags, "1.0"},
		{0, "1.1"},
	} {
		l := testLeader(t, testSpec, reg, clock, 0)
		l.seed(&api.KVPair{Key: "g-svc-a", Value: full.XML, Flags: tt.flags})
		rd, _ := mustRender(t, l)
		if got := route(t, rd.Rule, "route-0", "svc-b"); got != tt.want {
			t.Errorf("flags %x: route-0 svc-b = %q, want %q", tt.flags, got, tt.want)
		}
		// The seeded version leaves after the hold unless it appears.
		clock.Advance(DefaultExpansionHold)
		rd, _ = mustRender(t, l)
		if got := route(t, rd.Rule, "route-0", "svc-b"); got != "1.1" {
			t.Errorf("flags %x after the hold: route-0 svc-b = %q", tt.flags, got)
		}
	}
}

// A spec service whose watch has not answered yet renders nothing: an
// inventory that is not known yet is not an empty one.
func TestRenderWaitsForWatches(t *testing.T) {
	reg := &pendingRegistry{Static: discovery.NewStatic(), slow: "svc-b"}
	defer reg.Close()
	reg.Set("svc-a", instances("svc-a", "1.0", "1.1")...)
	l := testLeader(t, testSpec, reg, newFakeClock(), 0)
	if _, _, ok := l.render(); ok {
		t.Error("rendered before svc-b answered")
	}
}

// pendingRegistry is a static registry whose watch of one service never
// answers.
type pendingRegistry struct {
	*discovery.Static
	slow string
	w    *discovery.Watch
}

func (p *pendingRegistry) Watch(service string) *discovery.Watch {
	if service == p.slow {
		if p.w == nil {
			p.w = discovery.NewWatch(service)
		}
		return p.w
	}
	return p.Static.Watch(service)
}

func TestNewErrors(t *testing.T) {
	cl, _ := api.NewClient(api.DefaultConfig())
	if _, err := New(nil, "k"); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := New(cl, ""); err == nil {
		t.Error("empty key accepted")
	}
	if _, err := New(cl, "k", WithSessionTTL(time.Second)); err == nil || !strings.Contains(err.Error(), "10s to 24h") {
		t.Errorf("ttl 1s: %v", err)
	}
	if _, err := New(cl, "k", WithCheckTTL(500*time.Millisecond)); err == nil || !strings.Contains(err.Error(), "at least 1s") {
		t.Errorf("check ttl 500ms: %v", err)
	}
	if SpecKey("g-svc") != "graylane/spec/g-svc" || LockKey("g-svc") != "graylane/lock/g-svc" {
		t.Error("key layout changed")
	}
}

func BenchmarkRender(b *testing.B) {
	spec := mustSpec(b, testSpec)
	inv := rule.Inventory{
		"svc-a": {{Version: "1.0"}, {Version: "1.1"}},
		"svc-b": {{Version: "1.0"}, {Version: "1.1"}, {Version: "1.2"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(spec, inv); err != nil {
			b.Fatal(err)
		}
	}
}

// Under sort: time a version seeded from the rendering has no start time
// until it shows up; it keeps its side all the same.
func TestSeedSortTime(t *testing.T) {
	const spec = testSpec + "sort: time\n"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(service, version string, started time.Time) discovery.Instance {
		in := instances(service, version)[0]
		in.Started = started
		return in
	}
	reg := discovery.NewStatic()
	defer reg.Close()
	// Old by start time, new by version string: 2.0 started first.
	reg.Set("svc-a", at("svc-a", "2.0", t0), at("svc-a", "1.0", t0.Add(time.Hour)))
	reg.Set("svc-b", at("svc-b", "2.0", t0), at("svc-b", "1.0", t0.Add(time.Hour)), at("svc-b", "1.5", t0.Add(2*time.Hour)))
	clock := newFakeClock()
	full, _ := mustRender(t, testLeader(t, spec, reg, clock, 0))
	if got := route(t, full.Rule, "route-0", "svc-b"); got != "2.0" {
		t.Fatalf("route-0 svc-b = %q", got)
	}
	if got := route(t, full.Rule, "route-1", "svc-b"); got != "1.0;1.5" {
		t.Fatalf("route-1 svc-b = %q", got)
	}

	for _, tt := range []struct {
		name   string
		listed []discovery.Instance
	}{
		{"old missing", []discovery.Instance{at("svc-b", "1.0", t0.Add(time.Hour)), at("svc-b", "1.5", t0.Add(2*time.Hour))}},
		{"first new missing", []discovery.Instance{at("svc-b", "2.0", t0), at("svc-b", "1.5", t0.Add(2*time.Hour))}},
		{"only the last", []discovery.Instance{at("svc-b", "1.5", t0.Add(2*time.Hour))}},
	} {
		reg.Set("svc-b", tt.listed...)
		l := testLeader(t, spec, reg, clock, 0)
		l.seed(&api.KVPair{Key: "g-svc-a", Value: full.XML, Flags: RenderedFlags})
		if rd, _ := mustRender(t, l); string(rd.XML) != string(full.XML) {
			t.Errorf("%s: the takeover re-labelled:\n%s\nwant\n%s", tt.name, rd.XML, full.XML)
		}
	}
}
