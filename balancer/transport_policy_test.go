package balancer

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
)

// pauses records the pauses the transport asks for, without waiting.
type pauses struct {
	mu sync.Mutex
	d  []time.Duration
}

func (p *pauses) sleep(ctx context.Context, d time.Duration) bool {
	p.mu.Lock()
	p.d = append(p.d, d)
	p.mu.Unlock()
	return ctx.Err() == nil
}

func (p *pauses) take() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.d
	p.d = nil
	return d
}

func TestTransportRetryableStatus(t *testing.T) {
	reg := discovery.NewStatic()
	be := startBackend(t, "svc", "b", "1.0", nil)
	reg.Set("svc", be.in)
	p := fastRetry
	p.RetryableStatus = []int{http.StatusTooManyRequests}
	b := newBalancer(t, reg, WithRetry(p), WithEjection(Ejection{Failures: -1}))
	c := b.Client()
	defer c.CloseIdleConnections()
	for _, tt := range []struct {
		status int
		want   int64
	}{
		{http.StatusTooManyRequests, 3},
		{http.StatusServiceUnavailable, 1},
		{http.StatusInternalServerError, 1},
	} {
		be.status.Store(int64(tt.status))
		be.calls.Store(0)
		if code, _ := get(t, c, context.Background(), "http://svc/", nil); code != tt.status || be.calls.Load() != tt.want {
			t.Errorf("status %d: got %d after %d attempts, want %d attempts", tt.status, code, be.calls.Load(), tt.want)
		}
	}
	if _, err := New(discovery.NewStatic(), WithRetry(RetryPolicy{RetryableStatus: []int{1000}})); err == nil ||
		!strings.Contains(err.Error(), "1000") {
		t.Errorf("status 1000 accepted: %v", err)
	}
	if _, err := New(discovery.NewStatic(), WithRetry(RetryPolicy{BudgetRatio: -0.5})); err == nil {
		t.Error("a negative retry budget accepted")
	}
}

// A Retry-After is honoured when it fits before the caller's deadline and
// within MaxRetryAfter; otherwise the answer is returned at once.
func TestTransportRetryAfter(t *testing.T) {
	reg := discovery.NewStatic()
	var retryAfter string
	var mu sync.Mutex
	be := startBackend(t, "svc", "b", "1.0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		w.Header().Set("Retry-After", retryAfter)
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	reg.Set("svc", be.in)
	deadline := time.Now().Add(time.Hour)
	now := deadline.Add(-3 * time.Second) // the caller has 3 s left
	var slept pauses
	b := newBalancer(t, reg, WithRetry(fastRetry), WithEjection(Ejection{Failures: -1}),
		withSleep(slept.sleep), withClock(func() time.Time { return now }))
	c := b.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	for _, tt := range []struct {
		retryAfter string
		attempts   int64
		pause      time.Duration
	}{
		{"2", 3, 2 * time.Second}, // honoured
		{"0", 3, 0},               // no pause asked: the backoff
		{"4", 1, 0},               // beyond the caller's deadline
		{"3600", 1, 0},            // beyond MaxRetryAfter
		{"soon", 3, 0},            // not a Retry-After: the backoff
	} {
		mu.Lock()
		retryAfter = tt.retryAfter
		mu.Unlock()
		be.calls.Store(0)
		code, _ := get(t, c, ctx, "http://svc/", nil)
		got := slept.take()
		if code != http.StatusServiceUnavailable || be.calls.Load() != tt.attempts || len(got) != int(tt.attempts-1) {
			t.Errorf("Retry-After %s: %d after %d attempts and pauses %v, want %d attempts", tt.retryAfter, code, be.calls.Load(), got, tt.attempts)
			continue
		}
		for _, d := range got {
			if d < tt.pause || d > max(tt.pause, fastRetry.MaxBackoff) {
				t.Errorf("Retry-After %s: paused %v", tt.retryAfter, d)
			}
		}
	}

	// Without a deadline, MaxRetryAfter alone bounds it.
	mu.Lock()
	retryAfter = "4"
	mu.Unlock()
	be.calls.Store(0)
	if code, _ := get(t, c, context.Background(), "http://svc/", nil); code != http.StatusServiceUnavailable || be.calls.Load() != 3 {
		t.Errorf("Retry-After 4 without a deadline: %d after %d attempts, want 3", code, be.calls.Load())
	}
	if got := slept.take(); len(got) != 2 || got[0] != 4*time.Second {
		t.Errorf("pauses %v, want two of 4s", got)
	}
}

// WithServiceRetry sets one service's policy; WithRequestRetry one
// request's.
func TestTransportServiceAndRequestRetry(t *testing.T) {
	reg := discovery.NewStatic()
	a := startBackend(t, "svc-a", "a", "1.0", nil)
	a.status.Store(http.StatusServiceUnavailable)
	bb := startBackend(t, "svc-b", "b", "1.0", nil)
	bb.status.Store(http.StatusServiceUnavailable)
	reg.Set("svc-a", a.in)
	reg.Set("svc-b", bb.in)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 1}),
		WithServiceRetry("svc-b", RetryPolicy{Attempts: 4}))
	c := b.Client()
	defer c.CloseIdleConnections()
	get(t, c, context.Background(), "http://svc-a/", nil)
	get(t, c, context.Background(), "http://svc-b/", nil)
	if a.calls.Load() != 1 || bb.calls.Load() != 4 {
		t.Errorf("attempts: svc-a %d (want 1), svc-b %d (want 4)", a.calls.Load(), bb.calls.Load())
	}
	a.calls.Store(0)
	bb.calls.Store(0)
	ctx := WithRequestRetry(context.Background(), RetryPolicy{Attempts: 2})
	get(t, c, ctx, "http://svc-a/", nil)
	get(t, c, ctx, "http://svc-b/", nil)
	if a.calls.Load() != 2 || bb.calls.Load() != 2 {
		t.Errorf("request policy: svc-a %d, svc-b %d attempts, want 2 and 2", a.calls.Load(), bb.calls.Load())
	}

	req, _ := http.NewRequestWithContext(WithRequestRetry(context.Background(), RetryPolicy{Attempts: -1}), http.MethodGet, "http://svc-a/", nil)
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "retry attempts") {
		t.Errorf("invalid request policy: %v", err)
	}
	if _, err := New(discovery.NewStatic(), WithServiceRetry("svc-x", RetryPolicy{MaxBackoff: -1})); err == nil ||
		!strings.Contains(err.Error(), `"svc-x"`) {
		t.Errorf("invalid service policy: %v", err)
	}
}

// With every instance failing, a retry budget of 10 % (burst 2) lets
// retries add at most 10 % of the requests, plus the burst, counted at the
// instances; without it every request is sent Attempts times. (The circuit
// breaker, which would stop the flow altogether, is off.)
func TestTransportRetryBudget(t *testing.T) {
	reg := discovery.NewStatic()
	bad1 := startBackend(t, "svc", "bad-1", "1.0", nil)
	bad1.status.Store(http.StatusServiceUnavailable)
	bad2 := startBackend(t, "svc", "bad-2", "1.0", nil)
	bad2.status.Store(http.StatusServiceUnavailable)
	reg.Set("svc", bad1.in, bad2.in)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 3, BudgetRatio: 0.1, BudgetBurst: 2}), WithBreaker(BreakerPolicy{Disabled: true}))
	c := b.Client()
	defer c.CloseIdleConnections()
	const requests = 200
	if failed := hammer(t, c, requests, http.MethodGet, context.Background()); failed != requests {
		t.Fatalf("%d of %d GETs failed, want all", failed, requests)
	}
	sent := bad1.calls.Load() + bad2.calls.Load()
	if limit := int64(requests + requests/10 + 2); sent <= requests || sent > limit {
		t.Errorf("instances saw %d attempts for %d requests, want more than %d and at most %d", sent, requests, requests, limit)
	}

	// Once the service recovers, requests refill the budget.
	bad1.status.Store(0)
	bad2.status.Store(0)
	if failed := hammer(t, c, 20, http.MethodGet, context.Background()); failed != 0 {
		t.Fatalf("%d of 20 GETs failed after recovery", failed)
	}
	bad1.status.Store(http.StatusServiceUnavailable)
	bad2.status.Store(http.StatusServiceUnavailable)
	bad1.calls.Store(0)
	bad2.calls.Store(0)
	get(t, c, context.Background(), "http://svc/", nil)
	if sent := bad1.calls.Load() + bad2.calls.Load(); sent != 3 {
		t.Errorf("after recovery a failing request got %d attempts, want 3", sent)
	}
}

// With the circuit breaker on as well (its defaults), retries still stay
// within the budget, and the breaker, once open, keeps the rest of the
// requests away from the set: the instances see no more than the budget
// allows, and fewer than the requests.
func TestTransportRetryBudgetWithBreaker(t *testing.T) {
	reg := discovery.NewStatic()
	bad1 := startBackend(t, "svc", "bad-1", "1.0", nil)
	bad1.status.Store(http.StatusServiceUnavailable)
	bad2 := startBackend(t, "svc", "bad-2", "1.0", nil)
	bad2.status.Store(http.StatusServiceUnavailable)
	reg.Set("svc", bad1.in, bad2.in)
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
		WithRetry(RetryPolicy{Attempts: 3, BudgetRatio: 0.1, BudgetBurst: 2}))
	c := b.Client()
	defer c.CloseIdleConnections()
	const requests = 200
	if failed := hammer(t, c, requests, http.MethodGet, context.Background()); failed != requests {
		t.Fatalf("%d of %d GETs failed, want all", failed, requests)
	}
	sent := bad1.calls.Load() + bad2.calls.Load()
	if limit := int64(requests + requests/10 + 2); sent > limit || sent >= requests {
		t.Errorf("instances saw %d attempts for %d requests, want fewer than the requests (the breaker opened) and at most %d", sent, requests, limit)
	}
	if st := breakerOf(t, b, "svc", "1.0").State; st != "open" {
		t.Errorf("breaker %s, want open", st)
	}
}

// SameInstance retries go to the instance that just failed; by default a
// retry goes to another instance.
func TestTransportSameInstanceRetries(t *testing.T) {
	for _, tt := range []struct {
		name     string
		attempts int
		same     int
		want     [2]int64 // attempts at the first instance tried, at the other
	}{
		{"next instance", 2, 0, [2]int64{1, 1}},
		{"same instance", 2, 1, [2]int64{2, 0}},
		{"same, then next", 3, 1, [2]int64{2, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := discovery.NewStatic()
			x := startBackend(t, "svc", "x", "1.0", nil)
			x.status.Store(http.StatusServiceUnavailable)
			y := startBackend(t, "svc", "y", "1.0", nil)
			y.status.Store(http.StatusServiceUnavailable)
			reg.Set("svc", x.in, y.in)
			b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), withSleep((&pauses{}).sleep),
				WithRetry(RetryPolicy{Attempts: tt.attempts, SameInstance: tt.same}))
			c := b.Client()
			defer c.CloseIdleConnections()
			get(t, c, context.Background(), "http://svc/", nil)
			got := [2]int64{x.calls.Load(), y.calls.Load()}
			if got[0] < got[1] {
				got[0], got[1] = got[1], got[0]
			}
			if got != tt.want {
				t.Errorf("attempts per instance %v, want %v", got, tt.want)
			}
		})
	}
}
