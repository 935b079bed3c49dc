package circuit

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/internal/waittest"
	"github.com/graylane/graylane/rule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type openError struct {
	version  string
	halfOpen bool
}

func (e *openError) Error() string { return e.version + " " + strconv.FormatBool(e.halfOpen) }

func newSet(c Config) *Set {
	c = c.WithDefaults()
	return NewSet(func(string) Config { return c }, func(_, version string, halfOpen bool) error {
		return &openError{version, halfOpen}
	}, zap.NewNop())
}

func admit(t *testing.T, b *Breaker) Ticket {
	t.Helper()
	tk, err := b.Admit()
	if err != nil {
		t.Fatalf("admit (%s): %v", b.State(), err)
	}
	return tk
}

// open fails MinRequests calls admitted while closed.
func open(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		admit(t, b).Done(Failure)
	}
	if b.State() != "open" {
		t.Fatalf("after %d failures the breaker is %s", n, b.State())
	}
}

// An open breaker turns calls away with its error; after its timeout it
// admits HalfOpenRequests probes and no more, and closes when all of them
// succeed.
func TestOpenHalfOpenClosed(t *testing.T) {
	s := newSet(Config{MinRequests: 2, OpenTimeout: 10 * time.Millisecond, HalfOpenRequests: 2})
	b := s.Get("svc", "1.1")
	if s.Get("svc", "1.1") != b {
		t.Fatal("Get made a second breaker for one version set")
	}
	open(t, b, 2)
	var oe *openError
	if _, err := b.Admit(); !errors.As(err, &oe) || oe.halfOpen || oe.version != "1.1" {
		t.Fatalf("open breaker admitted: %v", err)
	}
	waittest.Until(t, "half-open", func() bool { return b.State() == "half-open" })
	p1, p2 := admit(t, b), admit(t, b)
	if !p1.Probe() || !p2.Probe() {
		t.Fatal("half-open tickets are not probes")
	}
	if _, err := b.Admit(); !errors.As(err, &oe) || !oe.halfOpen {
		t.Fatalf("third call with 2 probes under way: %v, want the half-open error", err)
	}
	p1.Done(Success)
	p2.Done(Success)
	if b.State() != "closed" {
		t.Fatalf("after 2 good probes: %s", b.State())
	}
	if b.Opened() != 1 || b.Rejected() != 2 {
		t.Errorf("opened %d, rejected %d; want 1, 2", b.Opened(), b.Rejected())
	}
	if tk := admit(t, b); tk.Probe() {
		t.Error("a closed breaker's ticket is a probe")
	}
}

// A probe ignored or not sent gives its place back; a failed probe
// reopens the breaker, and the outcomes of an earlier round count nothing.
func TestProbeRounds(t *testing.T) {
	b := newSet(Config{MinRequests: 2, OpenTimeout: 10 * time.Millisecond, HalfOpenRequests: 1}).Get("svc", "1.1")
	open(t, b, 2)
	waittest.Until(t, "half-open", func() bool { return b.State() == "half-open" })
	admit(t, b).Cancel()
	admit(t, b).Done(Ignored)
	stale := admit(t, b)
	stale.Done(Failure)
	if b.State() != "open" || b.Opened() != 2 {
		t.Fatalf("after a failed probe: %s, opened %d times", b.State(), b.Opened())
	}
	waittest.Until(t, "half-open", func() bool { return b.State() == "half-open" })
	probe := admit(t, b)
	stale.Done(Success) // the last round's: neither closes nor takes a place
	stale.Cancel()
	if _, err := b.Admit(); err == nil {
		t.Fatal("a stale ticket gave a place back")
	}
	if b.State() != "half-open" {
		t.Fatalf("a stale probe's success moved the breaker to %s", b.State())
	}
	probe.Done(Success)
	if b.State() != "closed" {
		t.Fatalf("after the good probe: %s", b.State())
	}
}

// Probes that never end (streams, long polls) hold a half-open round for
// OpenTimeout at most: then the next call starts a new round, and the old
// round's late outcomes count nothing. The breaker's clock is set by hand.
func TestProbeRoundExpires(t *testing.T) {
	const timeout = 10 * time.Millisecond
	b := newSet(Config{MinRequests: 2, OpenTimeout: timeout, HalfOpenRequests: 2}).Get("svc", "1.1")
	var now time.Duration
	b.closed.elapsed = func() time.Duration { return now }
	open(t, b, 2)
	waittest.Until(t, "half-open", func() bool { return b.State() == "half-open" })
	hung1, hung2 := admit(t, b), admit(t, b)
	now += timeout - 1
	if _, err := b.Admit(); err == nil {
		t.Fatal("a third probe before the round's timeout")
	}
	hung1.Done(Success) // an outcome: the round is alive again
	now += timeout - 1
	if _, err := b.Admit(); err == nil {
		t.Fatal("a third probe within the timeout of the last outcome")
	}
	now++
	p1 := admit(t, b)
	p2 := admit(t, b)
	if !p1.Probe() || !p2.Probe() {
		t.Fatal("a new round's tickets are not probes")
	}
	if _, err := b.Admit(); err == nil {
		t.Fatal("a new round admitted more than HalfOpenRequests probes")
	}
	hung2.Done(Failure) // the old round's: does not reopen
	hung2.Cancel()      // nor gives a place back
	if b.State() != "half-open" {
		t.Fatalf("an expired round's failure moved the breaker to %s", b.State())
	}
	if _, err := b.Admit(); err == nil {
		t.Fatal("an expired round's probe gave a place back")
	}
	p1.Done(Success)
	p2.Done(Success)
	if b.State() != "closed" {
		t.Fatalf("after the new round's good probes: %s", b.State())
	}
}

// A call admitted while the breaker was closed counts only while it still
// is; ignored calls count as requests, not as failures.
func TestClosedTickets(t *testing.T) {
	b := newSet(Config{MinRequests: 4, FailureRatio: 0.5, OpenTimeout: time.Hour}).Get("svc", "1.0")
	late := admit(t, b)
	for range 3 {
		admit(t, b).Done(Ignored)
	}
	admit(t, b).Done(Failure)
	if b.State() != "closed" {
		t.Fatalf("1 failure of 4 calls opened the breaker")
	}
	admit(t, b).Done(Failure)
	admit(t, b).Done(Failure)
	if b.State() != "open" {
		t.Fatalf("3 failures of 6 calls left the breaker %s", b.State())
	}
	requests, failures, _ := b.Counts()
	late.Done(Success) // admitted while closed, ends while open
	if r, f, _ := b.Counts(); r != requests || f != failures {
		t.Errorf("a call of the closed state counted while open: %d/%d, was %d/%d", r, f, requests, failures)
	}
}

// A call admitted before the breaker opened that ends once it has closed
// again counts nothing: it cannot reopen the version that just recovered.
func TestClosedTicketOfAnEarlierClosedState(t *testing.T) {
	b := newSet(Config{Failures: 1, FailureRatio: 2, OpenTimeout: 10 * time.Millisecond, HalfOpenRequests: 1}).Get("svc", "1.0")
	late := admit(t, b)
	open(t, b, 1)
	waittest.Until(t, "half-open", func() bool { return b.State() == "half-open" })
	admit(t, b).Done(Success)
	if b.State() != "closed" {
		t.Fatalf("after a good probe: %s", b.State())
	}
	late.Done(Failure) // one failure in a row would open it
	if b.State() != "closed" || b.Opened() != 1 {
		t.Fatalf("a call of the earlier closed state moved the breaker to %s (opened %d times)", b.State(), b.Opened())
	}
	if r, f, _ := b.Counts(); r != 0 || f != 0 {
		t.Errorf("a call of the earlier closed state counted: %d requests, %d failures", r, f)
	}
	now := admit(t, b)
	if now == late {
		t.Error("tickets of two closed states are alike")
	}
	if now != admit(t, b) {
		t.Error("two tickets of one closed state differ")
	}
	now.Done(Failure)
	if b.State() != "open" {
		t.Fatalf("a failure of the current closed state left the breaker %s", b.State())
	}
}

// Failures, when set, opens the breaker after that many failures in a
// row; a disabled policy gives no breaker, and a nil one admits all.
func TestFailuresInARowAndDisabled(t *testing.T) {
	b := newSet(Config{Failures: 3, FailureRatio: 2, OpenTimeout: time.Hour}).Get("svc", "1.0")
	for range 30 {
		admit(t, b).Done(Success)
	}
	admit(t, b).Done(Failure)
	admit(t, b).Done(Failure)
	admit(t, b).Done(Success)
	admit(t, b).Done(Failure)
	admit(t, b).Done(Failure)
	admit(t, b).Done(Ignored)
	if b.State() != "closed" {
		t.Fatal("2 failures in a row, then 2 after a success, opened the breaker")
	}
	if _, _, inARow := b.Counts(); inARow != 2 {
		t.Fatalf("%d failures in a row, want 2", inARow)
	}
	open(t, b, 1)
	off := newSet(Config{Disabled: true})
	if br := off.Get("svc", "1.0"); br != nil {
		t.Fatal("a disabled policy made a breaker")
	}
	var nb *Breaker
	tk, err := nb.Admit()
	if err != nil || tk.Probe() {
		t.Fatalf("nil breaker: %v", err)
	}
	tk.Done(Failure)
	tk.Cancel()
	n := 0
	off.Range(func(string, string, *Breaker) bool { n++; return true })
	if n != 0 {
		t.Errorf("Range listed %d disabled breakers", n)
	}
}

// A closed breaker's window holds the calls of the last interval, in
// tenths: a bucket leaves it whole once the interval has passed it. The
// window's clock is set by hand.
func TestWindowRolls(t *testing.T) {
	var w window
	w.init(10 * time.Second)
	var now time.Duration
	w.elapsed = func() time.Duration { return now }
	check := func(wantReq, wantFail, wantInARow int64) {
		t.Helper()
		if r, f, c := w.counts(); r != wantReq || f != wantFail || c != wantInARow {
			t.Fatalf("at %v: %d requests, %d failures, %d in a row; want %d, %d, %d", now, r, f, c, wantReq, wantFail, wantInARow)
		}
	}
	for range 20 {
		w.add(Success)
	}
	now = 5 * time.Second
	for range 10 {
		w.add(Failure)
	}
	w.add(Ignored)
	check(31, 10, 10)
	now = 9*time.Second + 999*time.Millisecond
	check(31, 10, 10)
	now = 10 * time.Second // the first second's bucket leaves
	check(11, 10, 10)
	w.add(Success)
	check(12, 10, 0)
	now = 19 * time.Second // everything but the last call left
	check(1, 0, 0)
	now = 125 * time.Second // the bucket of 5 s is reused at 125 s
	w.add(Failure)
	check(1, 1, 1)
	w.reset()
	check(0, 0, 0)
}

// A call that moves a bucket to its next period while another goroutine
// counts calls in that period loses none of them; a call whose period the
// bucket left while it was counted is not counted in the next one. The
// other goroutine's calls run between the first call's read of its bucket
// and its update (window.step).
func TestWindowInterleaved(t *testing.T) {
	var w window
	w.init(10 * time.Second)
	var now time.Duration
	w.elapsed = func() time.Duration { return now }
	for range 4 {
		w.add(Success) // the first second's bucket, a lap ago
	}
	now = 10 * time.Second
	others := func(n int, o Outcome) func() {
		return func() {
			w.step = nil
			for range n {
				w.add(o)
			}
		}
	}
	w.step = others(5, Failure)
	w.add(Success) // moves the bucket on, around the 5 failures
	if r, f, _ := w.counts(); r != 6 || f != 5 {
		t.Fatalf("a bucket moved on around 5 failures counts %d requests, %d failures; want 6, 5", r, f)
	}
	// A call at 11 s whose bucket moves on to 21 s before it is counted.
	now = 11 * time.Second
	w.step = func() { now = 21 * time.Second; others(3, Failure)() }
	w.add(Success)
	if r, f, _ := w.counts(); r != 3 || f != 3 {
		t.Fatalf("a late call counted in the next period: %d requests, %d failures; want 3, 3", r, f)
	}
}

// A bucket counts up to maxCount requests; past it, neither the requests
// nor their failures count, so that failures never exceed requests.
func TestWindowSaturates(t *testing.T) {
	var w window
	w.init(10 * time.Second)
	w.elapsed = func() time.Duration { return 0 }
	w.buckets[0].Store(maxCount<<countBits | (maxCount - 1))
	w.add(Failure)
	w.add(Failure)
	if r, f, _ := w.counts(); r != maxCount || f != maxCount-1 {
		t.Fatalf("a full bucket counts %d requests, %d failures; want %d, %d", r, f, maxCount, maxCount-1)
	}
	// An empty bucket takes any lap, however far from the current one.
	w.reset()
	w.elapsed = func() time.Duration { return time.Duration(1<<lapBits-1) * 10 * time.Second }
	w.add(Failure)
	if r, f, _ := w.counts(); r != 1 || f != 1 {
		t.Fatalf("after 2^26 - 1 laps: %d requests, %d failures; want 1, 1", r, f)
	}
}

// Many goroutines count calls while the clock moves the buckets on, for
// the race detector: a reader never sees more failures than requests,
// and once the clock stops, every call of the last interval is counted.
func TestWindowConcurrent(t *testing.T) {
	var w window
	w.init(10 * time.Second)
	var now atomic.Int64
	w.elapsed = func() time.Duration { return time.Duration(now.Load()) }
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				if g == 0 && i%50 == 0 {
					now.Add(int64(700 * time.Millisecond))
				}
				o := Success
				if i%3 == 0 {
					o = Failure
				}
				w.add(o)
				if r, f, _ := w.counts(); f > r {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d reads saw more failures than requests", n)
	}
	now.Add(int64(time.Hour))
	for i := range 100 {
		o := Success
		if i%4 == 0 {
			o = Failure
		}
		w.add(o)
	}
	if r, f, _ := w.counts(); r != 100 || f != 25 {
		t.Fatalf("%d requests, %d failures; want 100, 25", r, f)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		give Config
		want string
	}{
		{Config{FailureRatio: -1}, "failure ratio"},
		{Config{OpenTimeout: -1}, "open timeout"},
		{Config{Interval: -1}, "interval"},
	}
	for _, tt := range tests {
		if err := tt.give.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error about the %s", tt.give, err, tt.want)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestFailoverRoute(t *testing.T) {
	v, err := rule.ParseValue(`{"svc":"1.1","other":"2.0"}`)
	if err != nil {
		t.Fatal(err)
	}
	r := pick.Route{}.With(rule.TypeVersion, v)
	if _, ok := FailoverRoute(&r, "svc"); ok {
		t.Error("a route without version-failover has a failover route")
	}
	if _, ok := FailoverRoute(nil, "svc"); ok {
		t.Error("no route has a failover route")
	}
	r.Set(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	f, ok := FailoverRoute(&r, "svc")
	if !ok {
		t.Fatal("no failover route")
	}
	c := f.Constraint("svc")
	if c[rule.TypeVersion] != "1.0" || c[rule.TypeVersionFailover] != "" {
		t.Errorf("failover constraint %v, want version 1.0 and no further failover", c)
	}
	if r.Constraint("svc")[rule.TypeVersion] != "1.1" {
		t.Error("FailoverRoute changed the route it was given")
	}
}

// Calls from many goroutines while the breaker opens, turns half-open and
// closes again, for the race detector: every ticket is reported once, and
// once the calls succeed again the breaker closes.
func TestConcurrentCalls(t *testing.T) {
	b := newSet(Config{MinRequests: 10, OpenTimeout: time.Millisecond, HalfOpenRequests: 2}).Get("svc", "1.0")
	var fail atomic.Bool
	fail.Store(true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tk, err := b.Admit()
				if err != nil {
					continue
				}
				switch {
				case i%7 == g%7:
					tk.Cancel()
				case i%5 == 0:
					tk.Done(Ignored)
				case fail.Load():
					tk.Done(Failure)
				default:
					tk.Done(Success)
				}
				_, _, _ = b.Counts()
			}
		})
	}
	wg.Wait()
	if b.Opened() == 0 {
		t.Fatal("failing calls never opened the breaker")
	}
	fail.Store(false)
	waittest.Until(t, "the breaker closed by good calls", func() bool {
		if tk, err := b.Admit(); err == nil {
			tk.Done(Success)
		}
		return b.State() == "closed"
	})
}

// BenchmarkClosed is a call through a closed breaker: its admission and
// its outcome, as a gRPC pick's Done reports it.
func BenchmarkClosed(b *testing.B) {
	br := newSet(Config{}).Get("svc", "1.0")
	b.ReportAllocs()
	for b.Loop() {
		tk, err := br.Admit()
		if err != nil {
			b.Fatal(err)
		}
		tk.Done(Success)
	}
}
