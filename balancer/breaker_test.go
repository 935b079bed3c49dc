package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/waittest"
	"github.com/graylane/graylane/rule"
)

// breakerOf returns the debug view of service's breaker for version.
func breakerOf(t testing.TB, b *Balancer, service, version string) DebugBreaker {
	t.Helper()
	for _, s := range b.Debug().Services {
		if s.Name != service {
			continue
		}
		for _, br := range s.Breakers {
			if br.Version == version {
				return br
			}
		}
	}
	return DebugBreaker{State: "none"}
}

// callAll sends n GETs from workers goroutines with ctx and returns their
// errors (nil for a 200), in no particular order.
func callAll(c *http.Client, ctx context.Context, n, workers int) []error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for range next {
				err := callOnce(c, ctx)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	return errs
}

func callOnce(c *http.Client, ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// breakerFleet is svc at 1.0 (two instances) and 1.1 (two instances).
type breakerFleet struct {
	v10, v11 [2]*backend
}

func newBreakerFleet(t *testing.T, reg *discovery.Static) *breakerFleet {
	f := &breakerFleet{}
	for i, id := range []string{"a", "b"} {
		f.v10[i] = startBackend(t, "svc", "1.0-"+id, "1.0", nil)
		f.v11[i] = startBackend(t, "svc", "1.1-"+id, "1.1", nil)
	}
	reg.Set("svc", f.v10[0].in, f.v10[1].in, f.v11[0].in, f.v11[1].in)
	return f
}

func (f *breakerFleet) fail11(code int64) {
	f.v11[0].status.Store(code)
	f.v11[1].status.Store(code)
}

func (f *breakerFleet) calls11() int64 { return f.v11[0].calls.Load() + f.v11[1].calls.Load() }
func (f *breakerFleet) calls10() int64 { return f.v10[0].calls.Load() + f.v10[1].calls.Load() }

// A whole version set failing under load: its breaker opens once the
// failure ratio is met over MinRequests attempts; while it is open, calls
// fail fast with a typed error and only the half-open probes reach the
// set (counted at the instances); strict failover sends nothing to 1.0;
// once the set recovers, a round of probes closes the breaker.
func TestBreakerWholeVersionSetFailing(t *testing.T) {
	reg := discovery.NewStatic()
	f := newBreakerFleet(t, reg)
	const (
		minRequests = 20
		probes      = 2
		workers     = 8
	)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 2}),
		WithBreaker(BreakerPolicy{FailureRatio: 0.5, MinRequests: minRequests, OpenTimeout: 20 * time.Millisecond, HalfOpenRequests: probes}))
	c := b.Client()
	defer c.CloseIdleConnections()
	ctx := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.1"}`))

	// Healthy: the breaker exists and stays closed.
	for _, err := range callAll(c, ctx, 50, workers) {
		if err != nil {
			t.Fatalf("healthy set: %v", err)
		}
	}
	if st := breakerOf(t, b, "svc", "1.1").State; st != "closed" {
		t.Fatalf("healthy set: breaker %s", st)
	}

	// 1.1 fails. The breaker opens within its threshold: once failures
	// are half of the attempts in its window (which holds the healthy
	// ones) and those are at least MinRequests. Calls are sequential
	// here, so no attempt in flight adds to that.
	f.fail11(http.StatusServiceUnavailable)
	before := f.calls11()
	threshold := max(before, minRequests-before)
	opened := false
	for range 100 {
		err := callOnce(c, ctx)
		if errors.Is(err, ErrBreakerOpen) {
			opened = true
			break
		}
	}
	if !opened {
		t.Fatal("the breaker did not open after 100 failing calls")
	}
	if sent := f.calls11() - before; sent > threshold {
		t.Errorf("%d attempts reached the failing set before the breaker opened, want at most %d", sent, threshold)
	}

	// Open, then half-open each time the short open timeout ends: calls
	// go on, in batches, until the probes have failed and reopened the
	// breaker a few times. Most calls fail fast, with the typed error,
	// and the set sees no more than the probes of each half-open round.
	db := breakerOf(t, b, "svc", "1.1")
	opens0, calls0, calls10 := db.Opened, f.calls11(), f.calls10()
	var errs []error
	for range 10_000 {
		errs = append(errs, callAll(c, ctx, 100, workers)...)
		if breakerOf(t, b, "svc", "1.1").Opened-opens0 >= 3 {
			break
		}
		time.Sleep(2 * time.Millisecond) // let the open timeout end; never measured
	}
	fast := 0
	for _, err := range errs {
		var be *BreakerOpenError
		switch {
		case errors.As(err, &be):
			fast++
			if be.Service != "svc" || be.Version != "1.1" || !errors.Is(err, ErrBreakerOpen) {
				t.Fatalf("breaker error %#v (%v)", be, err)
			}
		case err == nil:
			t.Fatal("a call to the failing set succeeded")
		}
	}
	reopened := breakerOf(t, b, "svc", "1.1").Opened - opens0
	sent := f.calls11() - calls0
	if limit := (reopened + 1) * probes; sent > limit {
		t.Errorf("while open, the failing set saw %d attempts over %d half-open rounds, want at most %d", sent, reopened+1, limit)
	}
	if fast < len(errs)-int(sent) {
		t.Errorf("%d of %d calls failed fast, with %d sent", fast, len(errs), sent)
	}
	if n := f.calls10() - calls10; n != 0 {
		t.Errorf("strict failover: 1.0 got %d of 1.1's calls", n)
	}
	t.Logf("open: %d calls, %d failed fast, %d probes sent over %d reopenings", len(errs), fast, sent, reopened)

	// The route's own version-failover takes turned-away calls to 1.0.
	fr := mustRoute(t, `{"svc":"1.1"}`)
	fr.Set(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	fctx := WithRoute(context.Background(), fr)
	for _, err := range callAll(c, fctx, 200, workers) {
		if err != nil && !errors.Is(err, ErrBreakerOpen) && !strings.Contains(err.Error(), "503") {
			t.Fatalf("with version-failover: %v", err)
		}
	}
	if f.calls10() == calls10 {
		t.Error("with version-failover, no call reached 1.0 while 1.1's breaker was open")
	}

	// The set recovers: probes close the breaker, then every call passes.
	f.fail11(0)
	closed := false
	for range 100_000 {
		if err := callOnce(c, ctx); err == nil && breakerOf(t, b, "svc", "1.1").State == "closed" {
			closed = true
			break
		}
		time.Sleep(time.Millisecond) // let the open timeout end; never measured
	}
	if !closed {
		t.Fatal("the breaker did not close after the set recovered")
	}
	for _, err := range callAll(c, ctx, 200, workers) {
		if err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	}
}

// A breaker keeps its state per version set: 1.1 failing opens 1.1's, not
// 1.0's, and 1.0's calls go on. One instance of a set hanging, with its
// attempts timing out together, does not open the set's breaker with the
// defaults (TestTransportAttemptTimeout covers that under load).
func TestBreakerPerVersionSet(t *testing.T) {
	reg := discovery.NewStatic()
	f := newBreakerFleet(t, reg)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 1}), WithServiceBreaker("svc", BreakerPolicy{MinRequests: 5, OpenTimeout: time.Hour}))
	c := b.Client()
	defer c.CloseIdleConnections()
	f.fail11(http.StatusBadGateway)
	ctx11 := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.1"}`))
	ctx10 := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.0"}`))
	for range 10 {
		_ = callOnce(c, ctx11)
	}
	if err := callOnce(c, ctx11); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("1.1 after 10 failures: %v, want its breaker open", err)
	}
	if err := callOnce(c, ctx10); err != nil {
		t.Fatalf("1.0: %v", err)
	}
	if st := breakerOf(t, b, "svc", "1.0").State; st != "closed" {
		t.Errorf("1.0's breaker is %s", st)
	}
	if db := breakerOf(t, b, "svc", "1.1"); db.State != "open" || db.Opened != 1 || db.Rejected == 0 {
		t.Errorf("1.1's breaker: %+v", db)
	}
}

// A half-open breaker whose probes are under way turns requests away as an
// open one does, and the route's version-failover takes them elsewhere all
// the same: without one they fail fast, naming the half-open state; with
// one they are picked again among its versions. The open timeout is real
// time (gobreaker reads the clock): the test waits for the states, never
// for a duration.
func TestBreakerHalfOpenFailsOver(t *testing.T) {
	reg := discovery.NewStatic()
	release := make(chan struct{})
	var hold atomic.Bool
	var held atomic.Int64
	v10 := startBackend(t, "svc", "1.0-a", "1.0", nil)
	v11 := startBackend(t, "svc", "1.1-a", "1.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			held.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	// Runs before the servers close, which wait for the held probe.
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	reg.Set("svc", v10.in, v11.in)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), WithRetry(RetryPolicy{Attempts: 1}),
		WithBreaker(BreakerPolicy{MinRequests: 2, OpenTimeout: 20 * time.Millisecond, HalfOpenRequests: 1}))
	c := b.Client()
	defer c.CloseIdleConnections()
	ctx := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.1"}`))
	fr := mustRoute(t, `{"svc":"1.1"}`)
	fr.Set(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	fctx := WithRoute(context.Background(), fr)

	v11.status.Store(http.StatusServiceUnavailable)
	for range 2 {
		_ = callOnce(c, ctx)
	}
	if err := callOnce(c, ctx); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("after 2 failures: %v, want the breaker open", err)
	}
	v11.status.Store(0)
	hold.Store(true)
	waittest.Until(t, "1.1's breaker half-open", func() bool { return breakerOf(t, b, "svc", "1.1").State == "half-open" })

	probe := make(chan error, 1)
	go func() { probe <- callOnce(c, ctx) }()
	waittest.Until(t, "the probe at 1.1", func() bool { return held.Load() == 1 })

	err := callOnce(c, ctx)
	var be *BreakerOpenError
	if !errors.As(err, &be) || !be.HalfOpen || be.Version != "1.1" {
		t.Fatalf("1.1 with its probe under way: %v, want a half-open *BreakerOpenError", err)
	}
	calls10 := v10.calls.Load()
	if err := callOnce(c, fctx); err != nil {
		t.Fatalf("1.1 with its probe under way, version-failover 1.0: %v, want the call picked again at 1.0", err)
	}
	if n := v10.calls.Load() - calls10; n != 1 {
		t.Errorf("1.0 got %d calls, want the failover's 1", n)
	}
	if n := held.Load(); n != 1 {
		t.Errorf("1.1 got %d calls while half-open, want its one probe", n)
	}

	letGo()
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if st := breakerOf(t, b, "svc", "1.1").State; st != "closed" {
		t.Errorf("after its probe succeeded, 1.1's breaker is %s", st)
	}
}

// Turned off, no breaker stands in the way: every call reaches the set.
func TestBreakerDisabled(t *testing.T) {
	reg := discovery.NewStatic()
	f := newBreakerFleet(t, reg)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 1}), WithBreaker(BreakerPolicy{MinRequests: 5}),
		WithServiceBreaker("svc", BreakerPolicy{Disabled: true}))
	c := b.Client()
	defer c.CloseIdleConnections()
	f.fail11(http.StatusBadGateway)
	ctx := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.1"}`))
	for range 50 {
		if err := callOnce(c, ctx); errors.Is(err, ErrBreakerOpen) {
			t.Fatal("a disabled breaker opened")
		}
	}
	if n := f.calls11(); n != 50 {
		t.Errorf("the set saw %d of 50 calls", n)
	}
	if bs := b.Debug().Services[0].Breakers; len(bs) != 0 {
		t.Errorf("breakers listed while disabled: %+v", bs)
	}
}

// A caller that gives up does not count against the set.
func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	reg := discovery.NewStatic()
	hung, seen := hungBackend(t, "svc", "hung")
	reg.Set("svc", hung.in)
	b := newBalancer(t, reg, WithRetry(RetryPolicy{Attempts: 1}), WithBreaker(BreakerPolicy{MinRequests: 1}))
	c := b.Client()
	defer c.CloseIdleConnections()
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for seen.Load() <= int64(i) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		if err := callOnce(c, ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the caller's cancellation", err)
		}
		cancel()
	}
	if db := breakerOf(t, b, "svc", "1.0"); db.State != "closed" || db.Failures != 0 {
		t.Errorf("breaker after cancellations: %+v", db)
	}
}

func TestBreakerPolicyValidation(t *testing.T) {
	tests := []struct {
		give BreakerPolicy
		want string
	}{
		{BreakerPolicy{FailureRatio: -1}, "failure ratio"},
		{BreakerPolicy{OpenTimeout: -1}, "open timeout"},
		{BreakerPolicy{Interval: -1}, "interval"},
	}
	for _, tt := range tests {
		if _, err := New(discovery.NewStatic(), WithServiceBreaker("svc", tt.give)); err == nil ||
			!strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"svc"`) {
			t.Errorf("%+v: %v, want an error about the %s", tt.give, err, tt.want)
		}
	}
}

// The debug view shows each breaker, in JSON and HTML.
func TestBreakerDebugView(t *testing.T) {
	reg := discovery.NewStatic()
	f := newBreakerFleet(t, reg)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), WithRetry(RetryPolicy{Attempts: 1}),
		WithBreaker(BreakerPolicy{MinRequests: 4, OpenTimeout: time.Hour}))
	c := b.Client()
	defer c.CloseIdleConnections()
	f.fail11(http.StatusServiceUnavailable)
	ctx := WithRoute(context.Background(), mustRoute(t, `{"svc":"1.1"}`))
	for range 6 {
		_ = callOnce(c, ctx)
	}
	_ = callOnce(c, WithRoute(context.Background(), mustRoute(t, `{"svc":"1.0"}`)))

	srv := httptest.NewServer(b.DebugHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var st DebugState
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := st.Services[0].Breakers
	if len(got) != 2 || got[0].Version != "1.0" || got[0].State != "closed" || got[1].Version != "1.1" ||
		got[1].State != "open" || got[1].Opened != 1 || got[1].Rejected != 2 {
		t.Fatalf("breakers %+v", got)
	}
	resp, err = http.Get(srv.URL + "?format=html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<tr class="bad"><td>1.1</td><td>open</td>`) {
		t.Errorf("HTML page lacks 1.1's open breaker:\n%s", page)
	}
}

// BenchmarkBreakerOpen measures a call failed fast by an open breaker,
// reporting its 99th percentile (p99-ns) beside the mean.
func BenchmarkBreakerOpen(b *testing.B) {
	reg := discovery.NewStatic()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	reg.Set("svc", backendInstance(b, "svc", srv))
	bal, err := New(reg, WithRetry(RetryPolicy{Attempts: 1}), WithBreaker(BreakerPolicy{MinRequests: 1, OpenTimeout: time.Hour}))
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	c := bal.Client()
	defer c.CloseIdleConnections()
	ctx := context.Background()
	_ = callOnce(c, ctx)
	if err := callOnce(c, ctx); !errors.Is(err, ErrBreakerOpen) {
		b.Fatalf("got %v, want the breaker open", err)
	}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		err := callOnce(c, ctx)
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
		if !errors.Is(err, ErrBreakerOpen) {
			b.Fatal(err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	if calls.Load() != 1 {
		b.Fatalf("the instance saw %d calls, want 1", calls.Load())
	}
}
