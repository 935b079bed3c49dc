package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/clock"
	"github.com/hashicorp/consul/api"
)

// fakeConsul imitates the blocking endpoints of a Consul agent that the
// package uses: /v1/health/service/<name>, /v1/kv/<key> and the shared
// feed's /v1/health/state/<state> (no failing checks) and
// /v1/catalog/services, with
// X-Consul-Index, ?index and ?wait semantics, plus knobs to force an index,
// fail requests and count them.
type fakeConsul struct {
	srv *httptest.Server

	mu       sync.Mutex
	index    uint64
	changed  chan struct{}
	services map[string][]*api.ServiceEntry
	kv       map[string]*api.KVPair
	// indexOverride, when set, replaces the index of answers.
	indexOverride func(real uint64) uint64
	failing       bool
	requests      []request
	// holds keep the requests of a path until released (see hold).
	holds map[string]heldPath
	// inflight and maxInflight count the requests of each path being
	// served, now and at most.
	inflight, maxInflight map[string]int
	// now stamps requests (time.Now unless a test injects its clock).
	now func() time.Time
}

// heldPath holds the requests of a path until release is closed: before
// they are answered (they answer the state at the release), or, with
// answer set, after (they answer the state at their arrival, late).
type heldPath struct {
	release chan struct{}
	answer  bool
}

type request struct {
	Path  string
	Index string // the ?index sent, "" when none
	Wait  string
	At    time.Time
	// failed reports that the fake answered with an error.
	failed bool
}

func newFakeConsul(t *testing.T) *fakeConsul {
	t.Helper()
	f := &fakeConsul{index: 10, changed: make(chan struct{}), services: map[string][]*api.ServiceEntry{}, kv: map[string]*api.KVPair{}, now: time.Now,
		holds: map[string]heldPath{}, inflight: map[string]int{}, maxInflight: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeConsul) client(t *testing.T) *api.Client {
	t.Helper()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(f.srv.URL, "http://")
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}

// bump records a change under mu and wakes blocked queries.
func (f *fakeConsul) bump() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) setService(name string, entries ...*api.ServiceEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[name] = entries
	f.bump()
}

func (f *fakeConsul) touch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bump()
}

func (f *fakeConsul) putKV(key string, value []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bump()
	p := &api.KVPair{Key: key, Value: value, ModifyIndex: f.index, CreateIndex: f.index}
	if old, ok := f.kv[key]; ok {
		p.CreateIndex = old.CreateIndex
	}
	f.kv[key] = p
}

func (f *fakeConsul) deleteKV(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kv, key)
	f.bump()
}

func (f *fakeConsul) setFailing(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = b
}

// down makes every request fail, including those blocked right now, as an
// agent that stopped.
func (f *fakeConsul) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = true
	f.bump()
}

// upEmpty brings the agent back as a restarted dev agent does: nothing in
// the catalog or KV, and the index starting again from 1.
func (f *fakeConsul) upEmpty() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services = map[string][]*api.ServiceEntry{}
	f.kv = map[string]*api.KVPair{}
	f.failing = false
	f.index = 1
	close(f.changed)
	f.changed = make(chan struct{})
}

// upAt brings the agent back, keeping its catalog and KV, with its index
// at index: an agent restarted empty climbs back to indexes like the old
// ones within a few writes, so its answers may carry the very indexes
// seen before it stopped.
func (f *fakeConsul) upAt(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = false
	f.index = index
	close(f.changed)
	f.changed = make(chan struct{})
}

// hold holds the requests for path, those under way and those to come,
// until the returned release is called; see heldPath for answer.
func (f *fakeConsul) hold(t *testing.T, path string, answer bool) (release func()) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	h := heldPath{release: make(chan struct{}), answer: answer}
	f.holds[path] = h
	var once sync.Once
	release = func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.holds, path)
			f.mu.Unlock()
			close(h.release)
		})
	}
	t.Cleanup(release)
	return release
}

// maxInflightOf returns the most requests for path served at once.
func (f *fakeConsul) maxInflightOf(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInflight[path]
}

func (f *fakeConsul) setIndexOverride(fn func(uint64) uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.indexOverride = fn
	f.bump()
}

func (f *fakeConsul) requestsFor(prefix string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeConsul) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	me := len(f.requests)
	f.requests = append(f.requests, request{Path: r.URL.Path, Index: q.Get("index"), Wait: q.Get("wait"), At: f.now()})
	path := r.URL.Path
	f.inflight[path]++
	f.maxInflight[path] = max(f.maxInflight[path], f.inflight[path])
	defer func() {
		f.mu.Lock()
		f.inflight[path]--
		f.mu.Unlock()
	}()
	held, isHeld := f.holds[path]
	if isHeld && !held.answer {
		f.mu.Unlock()
		select {
		case <-held.release:
		case <-r.Context().Done():
		}
		f.mu.Lock()
	}
	if f.failing {
		f.requests[me].failed = true
		f.mu.Unlock()
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	want, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait := 5 * time.Minute
	if s := q.Get("wait"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			wait = d
		}
	}
	if want > 0 && f.answerIndex() <= want {
		ch := f.changed
		f.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		f.mu.Lock()
		if f.failing { // went down while the query waited
			f.requests[me].failed = true
			f.mu.Unlock()
			http.Error(w, "No cluster leader", http.StatusInternalServerError)
			return
		}
	}
	idx := f.answerIndex()
	var body any
	status := http.StatusOK
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/health/service/"):
		name := strings.TrimPrefix(r.URL.Path, "/v1/health/service/")
		list := f.services[name]
		if list == nil {
			list = []*api.ServiceEntry{}
		}
		body = list
	case strings.HasPrefix(r.URL.Path, "/v1/health/state/"):
		body = api.HealthChecks{}
	case r.URL.Path == "/v1/catalog/services":
		names := make(map[string][]string, len(f.services))
		for name := range f.services {
			names[name] = []string{}
		}
		body = names
	case strings.HasPrefix(r.URL.Path, "/v1/kv/"):
		key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
		if p, ok := f.kv[key]; ok {
			body = []*api.KVPair{p}
		} else {
			status = http.StatusNotFound
		}
	default:
		status = http.StatusNotFound
	}
	f.mu.Unlock()
	if isHeld && held.answer {
		select {
		case <-held.release:
		case <-r.Context().Done():
		}
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Consul-LastContact", "0")
	w.Header().Set("X-Consul-KnownLeader", "true")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if body != nil {
		_ = json.NewEncoder(w).Encode(body)
	}
}

// answerIndex is the index answers carry; mu held.
func (f *fakeConsul) answerIndex() uint64 {
	if f.indexOverride != nil {
		return f.indexOverride(f.index)
	}
	return f.index
}

func entry(id, addr string, port int, tags []string, meta map[string]string) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node:    &api.Node{Node: "node1", Address: "10.0.0.1"},
		Service: &api.AgentService{ID: id, Service: "svc", Address: addr, Port: port, Tags: tags, Meta: meta},
	}
}

// waitBlocked waits until the latest request for path waits on the
// current index: the watch handled every answer so far and blocks; the next
// request arrives only after the next answer was handled.
func (f *fakeConsul) waitBlocked(t *testing.T, path string) {
	t.Helper()
	waitFor(t, 30*time.Second, "a request blocked on the current index of "+path, func() bool {
		reqs := f.requestsFor(path)
		f.mu.Lock()
		idx := strconv.FormatUint(f.answerIndex(), 10)
		f.mu.Unlock()
		return len(reqs) > 0 && reqs[len(reqs)-1].Index == idx
	})
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordingSleep replaces the options' sleep: it records each pause and
// sleeps only a token time (or the full pause when real), so backoff can
// be checked without waiting.
type recordingSleep struct {
	real   bool // sleep the full pause, not a token time
	mu     sync.Mutex
	pauses []time.Duration
}

func (s *recordingSleep) sleep(ctx context.Context, d time.Duration) bool {
	s.mu.Lock()
	s.pauses = append(s.pauses, d)
	s.mu.Unlock()
	if s.real {
		return clock.Sleep(ctx, d)
	}
	return clock.Sleep(ctx, min(d, 2*time.Millisecond))
}

func (s *recordingSleep) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.pauses...)
}

func withSleep(fn func(context.Context, time.Duration) bool) Option {
	return optionFunc(func(o *options) { o.sleep = fn })
}

func withJitter(fn func() float64) Option {
	return optionFunc(func(o *options) { o.jitter = fn })
}

func withNow(fn func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = fn })
}

// fakeClock is a clock that moves only when something sleeps on it: a
// sleep of d advances it by d and returns at once. Timing checks against it
// are exact whatever the machine's load.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err() == nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}
