package balancer

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// fakeNet is a base RoundTripper that serves each request in process by
// the handler registered for its host:port, as a new server request (a
// fresh context, the headers copied): what crosses is what a wire carries.
type fakeNet struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
	hits     map[string]int // by host:port
}

func newFakeNet() *fakeNet {
	return &fakeNet{handlers: map[string]http.Handler{}, hits: map[string]int{}}
}

func (n *fakeNet) handle(in discovery.Instance, h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[in.HostPort()] = h
}

func (n *fakeNet) hitsOf(in discovery.Instance) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[in.HostPort()]
}

func (n *fakeNet) RoundTrip(req *http.Request) (*http.Response, error) {
	n.mu.Lock()
	h := n.handlers[req.URL.Host]
	n.hits[req.URL.Host]++
	n.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("dial %s: connection refused", req.URL.Host)
	}
	sreq := httptest.NewRequest(req.Method, req.URL.String(), req.Body)
	sreq.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, sreq)
	return rec.Result(), nil
}

const grayChainRule = `<rule><strategy-release>
<conditions type="gray">
  <condition id="canary" version-id="old=90;new=10"/>
</conditions>
<routes>
  <route id="old" type="version">{"svc-b":"1.0","svc-c":"1.0"}</route>
  <route id="new" type="version">{"svc-b":"1.1","svc-c":"1.1"}</route>
</routes>
</strategy-release></rule>`

// chain is gw -> svc-b -> svc-c in process: gw is the entry with a gray
// 90/10 rule; svc-b runs 1.0, 1.1 and a 1.1 that answers 500 at once;
// svc-c runs 1.0 (30 ms) and 1.1 (80 ms), timed on a shared fake clock.
// Every instance has its own balancer, all recording into one meter
// provider read by reader.
type chain struct {
	net                        *fakeNet
	clock                      *fakeClock
	reader                     *sdkmetric.ManualReader
	gw                         *Balancer
	gwH                        http.Handler
	b10, b11, b11bad, c10, c11 discovery.Instance
	draw                       atomic.Uint64
}

func inst(svc, id, v string, port int) discovery.Instance {
	return discovery.Instance{ID: id, Service: svc, Address: "10.1.0.1", Port: port, Version: v, Region: "dev", Zone: "z1"}
}

func newChain(t *testing.T, opts ...Option) *chain {
	t.Helper()
	ch := &chain{net: newFakeNet(), clock: newFakeClock(), reader: sdkmetric.NewManualReader()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(ch.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	ch.b10, ch.b11, ch.b11bad = inst("svc-b", "b10", "1.0", 1), inst("svc-b", "b11", "1.1", 2), inst("svc-b", "b11bad", "1.1", 3)
	ch.c10, ch.c11 = inst("svc-c", "c10", "1.0", 4), inst("svc-c", "c11", "1.1", 5)
	reg := discovery.NewStatic()
	reg.Set("svc-b", ch.b10, ch.b11, ch.b11bad)
	reg.Set("svc-c", ch.c10, ch.c11)
	newBal := func(self pick.Identity, more ...Option) *Balancer {
		all := append([]Option{WithIdentity(self), WithMeterProvider(mp), withClock(ch.clock.now)}, opts...)
		b, err := New(reg, append(all, more...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	gwr, err := rule.Parse([]byte(grayChainRule))
	if err != nil {
		t.Fatal(err)
	}
	ch.gw = newBal(pick.Identity{Service: "gw", Version: "1.0"}, WithEntry(true), WithRule(gwr), withDraw(ch.draw.Load))
	ch.gwH = ch.gw.Middleware(forward(ch.gw, ch.net, "http://svc-b/", 0, ch.clock))
	for _, in := range []discovery.Instance{ch.b10, ch.b11} {
		b := newBal(pick.IdentityOf(&in))
		ch.net.handle(in, b.Middleware(forward(b, ch.net, "http://svc-c/", 5*time.Millisecond, ch.clock)))
	}
	bad := newBal(pick.IdentityOf(&ch.b11bad))
	ch.net.handle(ch.b11bad, bad.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch.clock.advance(2 * time.Millisecond)
		http.Error(w, "broken", http.StatusInternalServerError)
	})))
	for _, c := range []struct {
		in discovery.Instance
		d  time.Duration
	}{{ch.c10, 30 * time.Millisecond}, {ch.c11, 80 * time.Millisecond}} {
		b := newBal(pick.IdentityOf(&c.in))
		v, d := c.in.Version, c.d
		ch.net.handle(c.in, b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ch.clock.advance(d)
			_, _ = io.WriteString(w, "svc-c:"+v)
		})))
	}
	return ch
}

// forward is a hop's handler: after d on the clock it calls url with the
// request's context and answers what it got, prefixed with its own
// identity.
func forward(b *Balancer, base http.RoundTripper, url string, d time.Duration, clock *fakeClock) http.Handler {
	client := &http.Client{Transport: b.Transport(base)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clock.advance(d)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		id := b.Identity()
		_, _ = fmt.Fprintf(w, "%s:%s>%s", id.Service, id.Version, body)
	})
}

// send sends n requests to gw, the i-th with the draw i/n of the range,
// and counts the answers by status.
func (ch *chain) send(t *testing.T, n int) (codes map[int]int) {
	t.Helper()
	codes = map[int]int{}
	step := uint64(math.MaxUint64/uint64(n)) + 1
	for i := range n {
		ch.draw.Store(uint64(i) * step)
		rec := httptest.NewRecorder()
		ch.gwH.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://gw/order", nil))
		codes[rec.Code]++
	}
	return codes
}

// points sums the histogram points of name whose attributes include want
// ("" as a value: the attribute is absent).
func points(t *testing.T, rm *metricdata.ResourceMetrics, name string, want map[string]string) (count uint64, buckets []uint64) {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("%s is a %T", name, m.Data)
			}
			for _, dp := range h.DataPoints {
				if !matches(dp.Attributes, want) {
					continue
				}
				count += dp.Count
				if buckets == nil {
					buckets = make([]uint64, len(dp.BucketCounts))
				}
				for i, c := range dp.BucketCounts {
					buckets[i] += c
				}
			}
		}
	}
	return count, buckets
}

// sums adds up the counter points of name whose attributes include want.
func sums(t *testing.T, rm *metricdata.ResourceMetrics, name string, want map[string]string) int64 {
	t.Helper()
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T", name, m.Data)
			}
			for _, dp := range s.DataPoints {
				if matches(dp.Attributes, want) {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func matches(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		got, ok := set.Value(attribute.Key(k))
		if v == "" {
			if ok {
				return false
			}
			continue
		}
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

// bucketOf returns the durationBounds bucket of d.
func bucketOf(d time.Duration) int {
	for i, b := range durationBounds {
		if d.Seconds() <= b {
			return i
		}
	}
	return len(durationBounds)
}

// only returns a bucket list with n in bucket i.
func only(i int, n uint64) []uint64 {
	b := make([]uint64, len(durationBounds)+1)
	b[i] = n
	return b
}

func add(a, b []uint64) []uint64 {
	out := make([]uint64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func TestMetricsThreeHopGrayChain(t *testing.T) {
	ch := newChain(t)
	const n = 100
	codes := ch.send(t, n)

	b10, b11, bad := ch.net.hitsOf(ch.b10), ch.net.hitsOf(ch.b11), ch.net.hitsOf(ch.b11bad)
	c10, c11 := ch.net.hitsOf(ch.c10), ch.net.hitsOf(ch.c11)
	// The gray condition split 90/10 by the injected draw; round robin
	// spread the 1.1 share over both 1.1 instances.
	if b10 != 90 || b11+bad != 10 || b11 != 5 || bad != 5 || c10 != 90 || c11 != 5 {
		t.Fatalf("hits: b 1.0 %d, 1.1 %d + bad %d; c 1.0 %d, 1.1 %d", b10, b11, bad, c10, c11)
	}
	if codes[200] != 95 || codes[500] != 5 {
		t.Fatalf("answers %v", codes)
	}

	var rm metricdata.ResourceMetrics
	if err := ch.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	type want struct {
		name    string
		attrs   map[string]string
		count   int
		buckets []uint64
	}
	// gw's attempts to svc-b include svc-c's time: 5+30, 5+80 and 2 ms.
	okB10, okB11, badB11 := bucketOf(35*time.Millisecond), bucketOf(85*time.Millisecond), bucketOf(2*time.Millisecond)
	tests := []want{
		{MetricClientDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.0", AttrRouteSource: "gray", AttrCondition: "canary",
			AttrRegion: "dev", AttrZone: "z1", AttrRetry: "false", "http.request.method": "GET", "http.response.status_code": "200", "error.type": ""},
			b10, only(okB10, uint64(b10))},
		{MetricClientDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.1", "error.type": ""}, b11, only(okB11, uint64(b11))},
		{MetricClientDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.1", "error.type": "500", "http.response.status_code": "500"},
			bad, only(badB11, uint64(bad))},
		{MetricClientDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.1"}, b11 + bad,
			add(only(okB11, uint64(b11)), only(badB11, uint64(bad)))},
		// svc-b's attempts to svc-c follow the route that arrived.
		{MetricClientDuration, map[string]string{AttrService: "svc-c", AttrVersion: "1.0", AttrRouteSource: "header", AttrCondition: ""},
			c10, only(bucketOf(30*time.Millisecond), uint64(c10))},
		{MetricClientDuration, map[string]string{AttrService: "svc-c", AttrVersion: "1.1", AttrRouteSource: "header"},
			c11, only(bucketOf(80*time.Millisecond), uint64(c11))},
		{MetricClientDuration, map[string]string{"error.type": "500"}, bad, nil},
		// The servers' own view, under their own identity.
		{MetricServerDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.1", "error.type": "500", AttrRouteSource: "header"},
			bad, only(badB11, uint64(bad))},
		{MetricServerDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.1", "error.type": ""}, b11, only(okB11, uint64(b11))},
		{MetricServerDuration, map[string]string{AttrService: "svc-b", AttrVersion: "1.0", "http.response.status_code": "200"}, b10, only(okB10, uint64(b10))},
		{MetricServerDuration, map[string]string{AttrService: "svc-c", AttrVersion: "1.0"}, c10, only(bucketOf(30*time.Millisecond), uint64(c10))},
		{MetricServerDuration, map[string]string{AttrService: "svc-c", AttrVersion: "1.1"}, c11, only(bucketOf(80*time.Millisecond), uint64(c11))},
		{MetricServerDuration, map[string]string{AttrService: "gw", AttrVersion: "1.0", AttrRouteSource: "gray", AttrCondition: "canary"}, n, nil},
		{MetricServerDuration, map[string]string{AttrService: "gw", "error.type": "500"}, bad, nil},
	}
	for _, tt := range tests {
		count, buckets := points(t, &rm, tt.name, tt.attrs)
		if count != uint64(tt.count) {
			t.Errorf("%s %v: count %d, want %d", tt.name, tt.attrs, count, tt.count)
		}
		if tt.buckets != nil && fmt.Sprint(buckets) != fmt.Sprint(tt.buckets) {
			t.Errorf("%s %v: buckets %v, want %v", tt.name, tt.attrs, buckets, tt.buckets)
		}
	}
	for _, tt := range []struct {
		attrs map[string]string
		want  int
	}{
		{map[string]string{AttrService: "svc-b", AttrOutcome: "success"}, b10 + b11},
		{map[string]string{AttrService: "svc-b", AttrOutcome: "failure", "error.type": "500", AttrVersion: "1.1"}, bad},
		{map[string]string{AttrService: "svc-c", AttrOutcome: "success"}, c10 + c11},
	} {
		if got := sums(t, &rm, MetricClientCalls, tt.attrs); got != int64(tt.want) {
			t.Errorf("%s %v = %d, want %d", MetricClientCalls, tt.attrs, got, tt.want)
		}
	}
	if got := sums(t, &rm, MetricClientRetries, nil); got != 0 {
		t.Errorf("%d retries, want none (500 is not retried)", got)
	}
	// No series names an instance: the address is opt-in.
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range h.DataPoints {
					if _, ok := dp.Attributes.Value("server.address"); ok {
						t.Errorf("%s has server.address without WithInstanceMetrics", m.Name)
					}
				}
			}
		}
	}

	// The debug view shows the same figures for the last minute.
	var got []string
	for _, tr := range ch.gw.Debug().Traffic {
		got = append(got, fmt.Sprintf("%s %s %s %d/%d p50=%s p99=%s", tr.Side, tr.Service, tr.Version, tr.Errors, tr.Requests, tr.P50, tr.P99))
	}
	wantTraffic := []string{
		"client svc-b 1.0 0/90 p50=50ms p99=50ms",
		"client svc-b 1.1 5/10 p50=5ms p99=100ms",
		"server gw 1.0 5/100 p50=50ms p99=100ms",
	}
	if strings.Join(got, "\n") != strings.Join(wantTraffic, "\n") {
		t.Errorf("debug traffic:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantTraffic, "\n"))
	}
	// A minute later it is gone.
	ch.clock.advance(time.Minute)
	if tr := ch.gw.Debug().Traffic; len(tr) != 0 {
		t.Errorf("traffic after a minute: %+v", tr)
	}
}

// The debug page shows the per-version traffic next to the rule.
func TestDebugPageShowsTraffic(t *testing.T) {
	ch := newChain(t)
	ch.send(t, 20)
	rec := httptest.NewRecorder()
	ch.gw.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/graylane", nil))
	page := rec.Body.String()
	for _, want := range []string{
		`<h3 id="traffic">`,
		"<td>client</td><td>svc-b</td><td>1.1</td><td>2</td><td>0.03/s</td><td>1</td><td>50.0%</td><td>&le; 5ms</td><td>&le; 100ms</td>",
		"<td>client</td><td>svc-b</td><td>1.0</td><td>18</td><td>0.30/s</td><td>0</td><td>0.0%</td><td>&le; 50ms</td><td>&le; 50ms</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s:\n%s", want, page[strings.Index(page, `id="traffic"`):strings.Index(page, `id="services"`)])
		}
	}
	if strings.Index(page, `id="traffic"`) > strings.Index(page, `id="services"`) {
		t.Error("traffic is not next to the rule")
	}
}

// breakerError stands for a circuit breaker's refusal.
type breakerError struct{}

func (breakerError) Error() string     { return "breaker open" }
func (breakerError) ErrorType() string { return ErrorTypeBreakerOpen }

func TestErrorType(t *testing.T) {
	tests := []struct {
		give   error
		status int
		want   string
	}{
		{nil, 200, ""},
		{nil, 404, ""},
		{nil, 500, "500"},
		{nil, 503, "503"},
		{&attemptTimeoutError{d: time.Second}, 0, ErrorTypeTimeout},
		{context.DeadlineExceeded, 0, ErrorTypeTimeout},
		{fmt.Errorf("get: %w", context.Canceled), 0, ErrorTypeCanceled},
		{fmt.Errorf("pick: %w", ErrNoInstance), 0, ErrorTypeNoInstance},
		{fmt.Errorf("attempt: %w", breakerError{}), 0, ErrorTypeBreakerOpen},
		{fmt.Errorf("attempt: %w", ErrBreakerOpen), 0, ErrorTypeBreakerOpen},
		{io.ErrUnexpectedEOF, 0, ErrorTypeConnection},
		{ErrClosed, 0, ErrorTypeOther},
	}
	for _, tt := range tests {
		if got := errorType(tt.status, tt.give); got != tt.want {
			t.Errorf("errorType(%d, %v) = %q, want %q", tt.status, tt.give, got, tt.want)
		}
	}
}

// The traffic rings are bounded: past maxTrafficKeys new versions are not
// kept, and the minute slides with the clock.
func TestTrafficBounded(t *testing.T) {
	clock := newFakeClock()
	tr := newTraffic(clock.now)
	for i := range maxTrafficKeys + 10 {
		tr.add(false, "svc", fmt.Sprint(i), time.Millisecond, false)
	}
	if n := len(tr.snapshot()); n != maxTrafficKeys {
		t.Fatalf("%d rings, want %d", n, maxTrafficKeys)
	}
	tr.add(true, "svc", "new", time.Millisecond, false)
	if n := len(tr.snapshot()); n != maxTrafficKeys {
		t.Fatalf("%d rings after a new key, want %d", n, maxTrafficKeys)
	}

	tr = newTraffic(clock.now)
	for range 3 {
		tr.add(true, "svc", "1.1", 20*time.Millisecond, true)
		clock.advance(25 * time.Second)
	}
	// Made 75, 50 and 25 s ago: the last two are in the minute.
	got := tr.snapshot()
	if len(got) != 1 || got[0].Requests != 2 || got[0].Errors != 2 || got[0].P50 != Duration(25*time.Millisecond) {
		t.Errorf("traffic %+v, want 2 requests and errors, p50 25ms", got)
	}
}
