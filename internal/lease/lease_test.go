package lease

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/internal/waittest"
)

const (
	testService = "graylane-lease-test"
	testKey     = "graylane/lock/lease-test"
)

// The environment of a child process that holds the lock until it is
// killed (see runChild).
const childName = "GRAYLANE_LEASE_CHILD_NAME"

// childSessionTTL is the session TTL of the child's lock: an hour, so that
// within a test's deadline only its check can end its session.
const childSessionTTL = time.Hour

// runChild holds the lock when the test binary was started as a child by
// consultest.StartChild, and reports whether it did. It prints "held"
// once it holds the lock, and holds it until it is killed.
func runChild() bool {
	cl, ok := consultest.ChildClient()
	if !ok {
		return false
	}
	log, _ := zap.NewDevelopment()
	name := os.Getenv(childName)
	l, err := New(cl, testService, testKey, WithName(name), WithMeta(map[string]string{"name": name}),
		WithSessionTTL(childSessionTTL), WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := l.Hold(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "held")
	select {} // until killed, or the parent goes away
}

// receive waits for the term a Hold in a goroutine sends, failing the test
// after a generous deadline (a minute), as its waits do.
func receive(t *testing.T, what string, ch <-chan *Term) *Term {
	t.Helper()
	select {
	case term := <-ch:
		if term == nil {
			t.FailNow() // Hold failed, and said why
		}
		return term
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: not within 60s", what)
		return nil
	}
}

func newLock(t *testing.T, cl *api.Client, name string, opts ...Option) *Lock {
	t.Helper()
	opts = append([]Option{WithName(name), WithMeta(map[string]string{"name": name}), WithLogger(zaptest.NewLogger(t))}, opts...)
	l, err := New(cl, testService, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// holdAsync starts l.Hold in a goroutine; the channel gets its result.
type held struct {
	term *Term
	err  error
}

func holdAsync(ctx context.Context, l *Lock) <-chan held {
	ch := make(chan held, 1)
	go func() {
		t, err := l.Hold(ctx)
		ch <- held{t, err}
	}()
	return ch
}

// eventLog records, in order, what a test did and what the Holds it
// started in goroutines did.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// String returns the events so far, separated by ", ".
func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ", ")
}

// holdLogged starts l.Hold in a goroutine that adds held to log once it
// holds; the channel gets the term, nil when Hold failed (the test then has
// failed, saying why: receive stops it).
func holdLogged(t *testing.T, l *Lock, log *eventLog, held string) <-chan *Term {
	ch := make(chan *Term, 1)
	go func() {
		term, err := l.Hold(t.Context())
		if err != nil {
			t.Error(err)
		}
		log.add(held)
		ch <- term
	}()
	return ch
}

// lockHolder returns the lock key's value and session ("" when free).
func lockHolder(t *testing.T, cl *api.Client) (string, string) {
	t.Helper()
	p, _, err := cl.KV().Get(testKey, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || p.Session == "" {
		return "", ""
	}
	return string(p.Value), p.Session
}

// instances returns the agent's instances of testService by ID.
func instances(t *testing.T, cl *api.Client) map[string]*api.AgentService {
	t.Helper()
	s, err := cl.Agent().ServicesWithFilter(`Service == "` + testService + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sessionNamed returns the session whose name has name in it, or nil.
func sessionNamed(t *testing.T, cl *api.Client, name string) *api.SessionEntry {
	t.Helper()
	list, _, err := cl.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if strings.Contains(s.Name, " "+name+" ") {
			return s
		}
	}
	return nil
}

func session(t *testing.T, cl *api.Client, id string) *api.SessionEntry {
	t.Helper()
	s, _, err := cl.Session().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSessionTied fails the test unless s ends with the check checkID and
// with its node, has no lock-delay and frees its locks when it ends.
func checkSessionTied(t *testing.T, s *api.SessionEntry, checkID string) {
	t.Helper()
	if s == nil {
		t.Fatal("no session")
	}
	if len(s.ServiceChecks) != 1 || s.ServiceChecks[0].ID != checkID {
		t.Errorf("session service checks %+v, want %s", s.ServiceChecks, checkID)
	}
	if len(s.NodeChecks) != 1 || s.NodeChecks[0] != "serfHealth" {
		t.Errorf("session node checks %v, want serfHealth", s.NodeChecks)
	}
	if s.LockDelay != 0 {
		t.Errorf("session lock-delay %v, want none", s.LockDelay)
	}
	if s.Behavior != api.SessionBehaviorRelease {
		t.Errorf("session behavior %q, want release", s.Behavior)
	}
}

func TestNewErrors(t *testing.T) {
	cl, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		client  *api.Client
		service string
		key     string
		opts    []Option
		want    string
	}{
		{"no client", nil, testService, testKey, nil, "nil Consul client"},
		{"no service", cl, "", testKey, nil, "empty service name"},
		{"no key", cl, testService, "", nil, "empty lock key"},
		{"session TTL too short", cl, testService, testKey, []Option{WithSessionTTL(9 * time.Second)}, "session TTL 9s: Consul accepts 10s to 24h"},
		{"session TTL too long", cl, testService, testKey, []Option{WithSessionTTL(25 * time.Hour)}, "session TTL 25h0m0s: Consul accepts 10s to 24h"},
		{"check TTL zero", cl, testService, testKey, []Option{WithCheckTTL(0)}, "check TTL 0s: want at least 1s"},
		{"check TTL short", cl, testService, testKey, []Option{WithCheckTTL(500 * time.Millisecond)}, "check TTL 500ms: want at least 1s"},
		{"check TTL over the session's", cl, testService, testKey, []Option{WithCheckTTL(20 * time.Second)}, "at most the session TTL (15s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.client, tt.service, tt.key, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
	for _, opts := range [][]Option{
		nil,
		{WithCheckTTL(time.Second), WithSessionTTL(10 * time.Second)},
		{WithCheckTTL(10 * time.Second), WithSessionTTL(10 * time.Second)},
		{WithSessionTTL(24 * time.Hour)},
	} {
		if _, err := New(cl, testService, testKey, opts...); err != nil {
			t.Errorf("New: %v", err)
		}
	}
}

// An agent that cannot be reached: Hold says what failed, first.
func TestHoldNamesWhatFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cl, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newLock(t, cl, "one")
	_, err = l.Hold(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "register "+testService+": ") {
		t.Fatalf("Hold: %v, want register %s: …", err, testService)
	}
	// A failed Hold leaves the Lock free to try again.
	if _, err := l.Hold(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "register ") {
		t.Fatalf("second Hold: %v", err)
	}
}

// Two holders: only one holds; the other waits with its own instance
// registered and a live session, and holds once the first releases.
func TestTwoHoldersHandOver(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	one, two := newLock(t, cl, "one"), newLock(t, cl, "two")
	if one.ServiceID() == two.ServiceID() || one.CheckID() == two.CheckID() {
		t.Fatalf("two Locks share an instance: %s, %s", one.ServiceID(), two.ServiceID())
	}
	t1, err := one.Hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v, sid := lockHolder(t, cl); v != "one" || sid != t1.Session() {
		t.Fatalf("lock held by %q with session %s, want one with %s", v, sid, t1.Session())
	}
	checkSessionTied(t, session(t, cl, t1.Session()), one.CheckID())
	if s := session(t, cl, t1.Session()); s.TTL != DefaultSessionTTL.String() {
		t.Errorf("session TTL %s, want %v", s.TTL, DefaultSessionTTL)
	}
	if _, err := one.Hold(t.Context()); err == nil || !strings.Contains(err.Error(), "already held") {
		t.Errorf("second Hold of a held Lock: %v", err)
	}

	var events eventLog
	second := holdLogged(t, two, &events, "two holds")
	// The standby waits with a live session of its own, tied to its own
	// check, which it feeds.
	waittest.Within(t, time.Minute, "two waits with its session", func() bool { return sessionNamed(t, cl, "two") != nil })
	checkSessionTied(t, sessionNamed(t, cl, "two"), two.CheckID())
	if s := instances(t, cl); s[one.ServiceID()] == nil || s[two.ServiceID()] == nil || s[two.ServiceID()].Meta["name"] != "two" {
		t.Fatalf("instances %v, want one's and two's", s)
	}
	if v, _ := lockHolder(t, cl); v != "one" {
		t.Fatalf("lock held by %q while one holds", v)
	}

	events.add("one releases")
	t1.Release()
	t1.Release() // a second Release does nothing
	t2 := receive(t, "two holds", second)
	defer t2.Release()
	if got := events.String(); got != "one releases, two holds" {
		t.Errorf("events: %s", got)
	}
	if t1.Context().Err() == nil {
		t.Error("a released term's context has not ended")
	}
	if v, sid := lockHolder(t, cl); v != "two" || sid != t2.Session() {
		t.Errorf("lock held by %q with session %s, want two with %s", v, sid, t2.Session())
	}
	if s := session(t, cl, t1.Session()); s != nil {
		t.Errorf("one's session outlived Release: %+v", s)
	}
}

// Release deregisters the instance and destroys the session; the Lock can
// hold again, with the same instance ID.
func TestReleaseDeregisters(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	l := newLock(t, cl, "one")
	for round := range 2 {
		term, err := l.Hold(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		inst := instances(t, cl)[l.ServiceID()]
		if inst == nil || inst.Meta["name"] != "one" {
			t.Fatalf("round %d: instance %+v", round, inst)
		}
		checks, err := cl.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		if c := checks[l.CheckID()]; c == nil || c.Status != api.HealthPassing || c.ServiceID != l.ServiceID() {
			t.Fatalf("round %d: check %+v, want passing on %s", round, c, l.ServiceID())
		}
		term.Release()
		if s := instances(t, cl); s[l.ServiceID()] != nil {
			t.Errorf("round %d: instance left after Release: %+v", round, s)
		}
		checks, err = cl.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		if c := checks[l.CheckID()]; c != nil {
			t.Errorf("round %d: check left after Release: %+v", round, c)
		}
		if s := session(t, cl, term.Session()); s != nil {
			t.Errorf("round %d: session left after Release: %+v", round, s)
		}
		if v, sid := lockHolder(t, cl); v != "" || sid != "" {
			t.Errorf("round %d: lock still held by %q (%s)", round, v, sid)
		}
	}
}

// A standby whose context ends while it waits: Hold returns the context's
// error and leaves no instance and no session behind.
func TestHoldCanceled(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	one, two := newLock(t, cl, "one"), newLock(t, cl, "two")
	t1, err := one.Hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Release()
	ctx, cancel := context.WithCancel(t.Context())
	ch := holdAsync(ctx, two)
	waittest.Within(t, time.Minute, "two waits with its session", func() bool { return sessionNamed(t, cl, "two") != nil })
	cancel()
	h := <-ch
	if !errors.Is(h.err, context.Canceled) || h.term != nil {
		t.Fatalf("Hold: %v, %v; want context.Canceled", h.term, h.err)
	}
	if s := instances(t, cl); s[two.ServiceID()] != nil {
		t.Errorf("instance left: %+v", s[two.ServiceID()])
	}
	if s := sessionNamed(t, cl, "two"); s != nil {
		t.Errorf("session left: %+v", s)
	}
	if _, err := two.Hold(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Hold with an ended context: %v", err)
	}
}

// A term's context ends when its session ends under it (here destroyed
// from outside, as Consul does when the check goes critical).
func TestLossEndsTerm(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	l := newLock(t, cl, "one")
	term, err := l.Hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Session().Destroy(term.Session(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-term.Context().Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the term's context did not end after its session was destroyed")
	}
	term.Release()
	if s := instances(t, cl); s[l.ServiceID()] != nil {
		t.Errorf("instance left after Release: %+v", s)
	}
}

// A holder whose process dies (killed: no clean-up, and no one feeds its
// check any more) loses the lock, and the standby takes it. The child's
// session has a TTL of an hour, so the only thing that can end it within
// the test's deadline is its check going critical.
func TestKilledHolderLosesLock(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	child := consultest.StartChild(t, a, childName+"=child")
	waittest.Within(t, time.Minute, "the child holds the lock", func() bool { v, _ := lockHolder(t, cl); return v == "child" })
	_, childSession := lockHolder(t, cl)
	var childInstance *api.AgentService
	for _, s := range instances(t, cl) {
		if s.Meta["name"] == "child" {
			childInstance = s
		}
	}
	if childInstance == nil {
		t.Fatalf("no instance of the child among %v", instances(t, cl))
	}
	checks, err := cl.Agent().ChecksWithFilter(`ServiceID == "` + childInstance.ID + `"`)
	if err != nil || len(checks) != 1 {
		t.Fatalf("checks of the child's instance: %v, %v", checks, err)
	}
	var childCheck string
	for id := range checks {
		childCheck = id
	}
	s := session(t, cl, childSession)
	checkSessionTied(t, s, childCheck)
	if s.TTL != childSessionTTL.String() {
		t.Fatalf("child's session TTL %s, want %v", s.TTL, childSessionTTL)
	}

	standby := newLock(t, cl, "standby")
	var events eventLog
	got := holdLogged(t, standby, &events, "standby holds")
	waittest.Within(t, time.Minute, "the standby waits with its session", func() bool { return sessionNamed(t, cl, "standby") != nil })
	events.add("child killed")
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	term := receive(t, "the standby holds", got)
	defer term.Release()
	if order := events.String(); order != "child killed, standby holds" {
		t.Errorf("events: %s", order)
	}
	if v, sid := lockHolder(t, cl); v != "standby" || sid != term.Session() {
		t.Errorf("lock held by %q with %s, want standby with %s", v, sid, term.Session())
	}
	// The child's session ended with its check, long before its TTL.
	if s := session(t, cl, childSession); s != nil {
		t.Errorf("the child's session lives on: %+v", s)
	}
	checks, err = cl.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[childCheck]; c == nil || c.Status != api.HealthCritical {
		t.Errorf("the child's check %+v, want critical", c)
	}
}

// A key that holds something else than a lock: Hold names the lock and
// leaves no instance and no session behind.
func TestHoldNotALock(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	if _, err := cl.KV().Put(&api.KVPair{Key: testKey, Value: []byte("not a lock")}, nil); err != nil {
		t.Fatal(err)
	}
	l := newLock(t, cl, "one")
	_, err := l.Hold(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "lock "+testKey+": ") || !errors.Is(err, api.ErrLockConflict) {
		t.Fatalf("Hold: %v, want lock %s: %v", err, testKey, api.ErrLockConflict)
	}
	if s := instances(t, cl); s[l.ServiceID()] != nil {
		t.Errorf("instance left: %+v", s[l.ServiceID()])
	}
	if s := sessionNamed(t, cl, "one"); s != nil {
		t.Errorf("session left: %+v", s)
	}
}

// A holder whose node fails (its agent killed: no leave, and its check can
// no longer go critical anywhere) loses the lock through the node's
// serfHealth, and a standby on another node takes it. The holder's session
// has a TTL of an hour, so only the node check can end it within the
// test's deadline; the holder's term ends too, and its Release returns
// with the agent gone.
func TestNodeFailureLosesLock(t *testing.T) {
	c := consultest.StartCluster(t, 1)
	node, server := c.Agent(), c.Servers()[0]
	holder := newLock(t, node.Client(), "holder", WithSessionTTL(time.Hour))
	term, err := holder.Hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer term.Release()
	cl := server.Client()
	checkSessionTied(t, session(t, cl, term.Session()), holder.CheckID())
	if s := session(t, cl, term.Session()); s.Node != node.Node() {
		t.Fatalf("holder's session on node %s, want %s", s.Node, node.Node())
	}

	standby := newLock(t, cl, "standby")
	var events eventLog
	got := holdLogged(t, standby, &events, "standby holds")
	waittest.Within(t, time.Minute, "the standby waits with its session", func() bool { return sessionNamed(t, cl, "standby") != nil })
	events.add("node killed")
	node.Kill(t)
	t2 := receive(t, "the standby holds", got)
	defer t2.Release()
	if order := events.String(); order != "node killed, standby holds" {
		t.Errorf("events: %s", order)
	}
	if v, sid := lockHolder(t, cl); v != "standby" || sid != t2.Session() {
		t.Errorf("lock held by %q with %s, want standby with %s", v, sid, t2.Session())
	}
	if s := session(t, cl, term.Session()); s != nil {
		t.Errorf("the holder's session lives on: %+v", s)
	}
	select {
	case <-term.Context().Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the holder's term did not end with its agent gone")
	}
}

// An instance removed before Release (say by an agent restarted without
// it): the agent answers the deregistration with 404, which is the outcome
// wanted, so Release logs no failure.
func TestReleaseInstanceGone(t *testing.T) {
	a := consultest.Start(t)
	cl := a.Client()
	core, logs := observer.New(zap.WarnLevel)
	l := newLock(t, cl, "one", WithLogger(zap.New(core)))
	term, err := l.Hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Agent().ServiceDeregister(l.ServiceID()); err != nil {
		t.Fatal(err)
	}
	term.Release()
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "deregistering") {
			t.Errorf("logged %q (%v) for an instance already gone", e.Message, e.ContextMap())
		}
	}
	if s := instances(t, cl); s[l.ServiceID()] != nil {
		t.Errorf("instance left after Release: %+v", s)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}
