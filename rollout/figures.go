package rollout

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Figures answers the questions a check asks about one version of one
// service over a window ending at a given time.
type Figures interface {
	// Query returns the figures of service at version over
	// [end-window, end].
	Query(ctx context.Context, service, version string, end time.Time, window time.Duration) (Figure, error)
}

// Figure is what one version served over a window.
type Figure struct {
	// Requests is how many requests it served; Errors how many of them
	// failed (the metrics' error_type set).
	Requests, Errors float64
	// P99 is the 99th percentile of the request duration; 0 without
	// requests.
	P99 time.Duration
}

// ErrorRate is Errors / Requests, 0 without requests.
func (f Figure) ErrorRate() float64 {
	if f.Requests <= 0 {
		return 0
	}
	return f.Errors / f.Requests
}

// String formats the figure for logs and progress lines.
func (f Figure) String() string {
	return fmt.Sprintf("%.0f req, %.2f%% err, p99 %v", f.Requests, 100*f.ErrorRate(), f.P99.Round(time.Microsecond))
}

// Recorder is an in-process [Figures]: it keeps each request's time,
// outcome and duration per service and version, for demos and tests. A
// server's middleware (or a test) calls Record; Query reads exactly the
// requests recorded in the window. Safe for concurrent use. It keeps every
// request until Forget, so it suits bounded runs, not production; a
// production fleet queries Prometheus ([NewPrometheus]).
type Recorder struct {
	mu   sync.Mutex
	byID map[[2]string][]sample
}

type sample struct {
	at  time.Time
	d   time.Duration
	err bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{byID: map[[2]string][]sample{}} }

// Record notes one request that service at version served at time at,
// taking d, failed or not.
func (r *Recorder) Record(service, version string, at time.Time, d time.Duration, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{service, version}
	r.byID[k] = append(r.byID[k], sample{at, d, failed})
}

// Forget drops the samples recorded before t.
func (r *Recorder) Forget(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.byID {
		r.byID[k] = slices.DeleteFunc(s, func(x sample) bool { return x.at.Before(t) })
	}
}

// Query implements [Figures]: the requests recorded in (end-window, end],
// the p99 by the nearest-rank method.
func (r *Recorder) Query(_ context.Context, service, version string, end time.Time, window time.Duration) (Figure, error) {
	r.mu.Lock()
	var ds []time.Duration
	var f Figure
	start := end.Add(-window)
	for _, s := range r.byID[[2]string{service, version}] {
		if !s.at.After(start) || s.at.After(end) {
			continue
		}
		f.Requests++
		if s.err {
			f.Errors++
		}
		ds = append(ds, s.d)
	}
	r.mu.Unlock()
	if len(ds) > 0 {
		slices.Sort(ds)
		i := int(math.Ceil(0.99*float64(len(ds)))) - 1
		f.P99 = ds[max(i, 0)]
	}
	return f, nil
}
