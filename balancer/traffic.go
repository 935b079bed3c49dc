package balancer

import (
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// traffic keeps the last minute of per-version figures for the debug view:
// for each side (client or server), service and version, a ring of
// one-second slots with request and error counts and latency buckets (the
// histograms' boundaries). It is fed by the same calls that record the
// metrics, reads the balancer's clock, and holds at most maxTrafficKeys
// rings of a few kilobytes each.
type traffic struct {
	now  func() time.Time
	m    atomic.Pointer[map[trafficKey]*trafficRing]
	mu   sync.Mutex
	full atomic.Bool // maxTrafficKeys reached: new keys are not kept
}

// trafficSlots is the ring's length in one-second slots: the window.
const trafficSlots = 60

// maxTrafficKeys bounds the rings kept.
const maxTrafficKeys = 256

type trafficKey struct {
	server           bool
	service, version string
}

type trafficRing struct {
	mu    sync.Mutex
	slots [trafficSlots]trafficSlot
}

type trafficSlot struct {
	sec     int64 // Unix second the slot counts, 0 when unused
	n, errs uint32
	buckets [len(durationBounds) + 1]uint32 // by durationBounds, then above the last
}

func newTraffic(now func() time.Time) *traffic { return &traffic{now: now} }

// add counts one request of service's version that took d and failed or
// not.
func (t *traffic) add(server bool, service, version string, d time.Duration, failed bool) {
	k := trafficKey{server, service, version}
	r := t.ring(&k)
	if r == nil {
		return
	}
	sec := t.now().Unix()
	b := sort.SearchFloat64s(durationBounds[:], d.Seconds())
	r.mu.Lock()
	s := &r.slots[sec%trafficSlots]
	if s.sec != sec {
		*s = trafficSlot{sec: sec}
	}
	s.n++
	if failed {
		s.errs++
	}
	s.buckets[b]++
	r.mu.Unlock()
}

func (t *traffic) ring(k *trafficKey) *trafficRing {
	if m := t.m.Load(); m != nil {
		if r := (*m)[*k]; r != nil {
			return r
		}
	}
	if t.full.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	var n int
	if old != nil {
		if r := (*old)[*k]; r != nil {
			return r
		}
		n = len(*old)
	}
	if n >= maxTrafficKeys {
		t.full.Store(true)
		return nil
	}
	m := make(map[trafficKey]*trafficRing, n+1)
	if old != nil {
		for k2, v := range *old {
			m[k2] = v
		}
	}
	r := new(trafficRing)
	m[*k] = r
	t.m.Store(&m)
	return r
}

// DebugTraffic is one version's figures over the last minute, from one
// side: calls this balancer made to a version of another service
// (Side "client"), or requests its middleware served (Side "server", the
// balancer's own service and version, see WithIdentity). Recorded only
// with a meter provider (WithMeterProvider).
type DebugTraffic struct {
	Side    string `json:"side"`
	Service string `json:"service"`
	Version string `json:"version"`
	// Requests and Errors count the requests (client side: attempts) of
	// the last minute and those that failed (error.type set).
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Rate is Requests per second over the minute; ErrorRatio
	// Errors/Requests.
	Rate       float64 `json:"rate"`
	ErrorRatio float64 `json:"errorRatio"`
	// P50 and P99 are the latency quantiles, as the upper bound of the
	// histogram bucket they fall in (the last bound when above it).
	P50 Duration `json:"p50"`
	P99 Duration `json:"p99"`
}

// snapshot returns the figures of the last minute, by side, service and
// version.
func (t *traffic) snapshot() []DebugTraffic {
	m := t.m.Load()
	if m == nil {
		return nil
	}
	now := t.now().Unix()
	out := make([]DebugTraffic, 0, len(*m))
	for k, r := range *m {
		var n, errs uint64
		var buckets [len(durationBounds) + 1]uint64
		r.mu.Lock()
		for i := range r.slots {
			s := &r.slots[i]
			if s.sec <= now-trafficSlots || s.sec > now {
				continue
			}
			n += uint64(s.n)
			errs += uint64(s.errs)
			for j, c := range s.buckets {
				buckets[j] += uint64(c)
			}
		}
		r.mu.Unlock()
		if n == 0 {
			continue
		}
		side := "client"
		if k.server {
			side = "server"
		}
		out = append(out, DebugTraffic{
			Side: side, Service: k.service, Version: k.version,
			Requests: n, Errors: errs,
			Rate:       float64(n) / trafficSlots,
			ErrorRatio: float64(errs) / float64(n),
			P50:        quantile(&buckets, n, 0.50),
			P99:        quantile(&buckets, n, 0.99),
		})
	}
	slices.SortFunc(out, func(a, b DebugTraffic) int {
		switch {
		case a.Side != b.Side:
			return cmpString(a.Side, b.Side)
		case a.Service != b.Service:
			return cmpString(a.Service, b.Service)
		}
		return cmpString(a.Version, b.Version)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quantile returns the upper bound of the bucket holding quantile q of n
// counts, by nearest rank.
func quantile(buckets *[len(durationBounds) + 1]uint64, n uint64, q float64) Duration {
	rank := max(uint64(math.Ceil(q*float64(n))), 1) // nearest rank, 1-based
	var cum uint64
	for i, c := range buckets {
		cum += c
		if cum >= rank {
			if i >= len(durationBounds) {
				i = len(durationBounds) - 1
			}
			return Duration(time.Duration(durationBounds[i] * float64(time.Second)))
		}
	}
	return Duration(time.Duration(durationBounds[len(durationBounds)-1] * float64(time.Second)))
}
