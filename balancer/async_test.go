package balancer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// svcD registers svc-d 1.0 and 1.1 on n, each answering its version.
func svcD(n *fakeNet, reg *discovery.Static) (d10, d11 discovery.Instance) {
	d10 = discovery.Instance{ID: "d10", Service: "svc-d", Address: "10.3.0.1", Port: 1, Version: "1.0"}
	d11 = discovery.Instance{ID: "d11", Service: "svc-d", Address: "10.3.0.1", Port: 2, Version: "1.1"}
	for _, in := range []discovery.Instance{d10, d11} {
		v := in.Version
		n.handle(in, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, v) }))
	}
	reg.Set("svc-d", d10, d11)
	return d10, d11
}

func fetchBody(t *testing.T, c *http.Client, ctx context.Context, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

const toNew = `<rule><strategy-release>
<conditions type="blue-green"><condition id="all-new" version-id="new"/></conditions>
<routes><route id="new" type="version">{"svc-d":"1.1","producer":"1.1"}</route></routes>
</strategy-release></rule>`

// gw -> mid -> svc-c -> svc-d, where mid is a plain net/http service that
// forwards only traceparent and baggage: with WithBaggage at both ends,
// svc-c still routes svc-d by the route gw decided; without it, not.
func TestBaggageAcrossPlainHop(t *testing.T) {
	for _, on := range []bool{true, false} {
		n := newFakeNet()
		reg := discovery.NewStatic()
		d10, d11 := svcD(n, reg)
		r, err := rule.Parse([]byte(toNew))
		if err != nil {
			t.Fatal(err)
		}
		gw, err := New(reg, WithEntry(true), WithRule(r), WithBaggage(on))
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		c, err := New(reg, WithBaggage(on), WithIdentity(Identity{Service: "svc-c", Version: "1.0"}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cIn := discovery.Instance{ID: "c", Service: "svc-c", Address: "10.3.0.2", Port: 1, Version: "1.0"}
		cClient := &http.Client{Transport: c.Transport(n)}
		n.handle(cIn, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, fetchBody(t, cClient, r.Context(), "http://svc-d/"))
		})))
		// mid knows svc-c's address and copies two headers, nothing else.
		mid := discovery.Instance{ID: "mid", Service: "mid", Address: "10.3.0.3", Port: 1}
		reg.Set("mid", mid)
		n.handle(mid, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("N-D-Version") == "" {
				t.Error("gw sent no n-d-version to mid")
			}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+cIn.HostPort()+"/", nil)
			for _, h := range []string{"Traceparent", "Baggage"} {
				if v := r.Header.Get(h); v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := n.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(w, resp.Body)
		}))
		gwClient := &http.Client{Transport: gw.Transport(n)}
		for range 4 {
			fetchBody(t, gwClient, context.Background(), "http://mid/")
		}
		if on && (n.hitsOf(d11) != 4 || n.hitsOf(d10) != 0) {
			t.Errorf("with baggage: svc-d 1.0 got %d calls, 1.1 %d; want all on 1.1", n.hitsOf(d10), n.hitsOf(d11))
		}
		if !on && n.hitsOf(d10) != 2 {
			t.Errorf("without baggage: svc-d 1.0 got %d calls of 4; want round robin (the route lost)", n.hitsOf(d10))
		}
	}
}

// n-d-* headers win over baggage.
func TestBaggageHeadersWin(t *testing.T) {
	b, err := New(discovery.NewStatic(), WithBaggage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := http.Header{"Baggage": {"n-d-version=1.1,other=x"}}
	r, ok, _ := inboundRoute(t, b, "/", h)
	if !ok || versionFor(r, "svc") != "1.1" || r.Origin.Source != SourceHeader {
		t.Fatalf("from baggage alone: %v %v %v", ok, r.String(), r.Origin)
	}
	h.Set("N-D-Version", "1.0")
	r, _, _ = inboundRoute(t, b, "/", h)
	if versionFor(r, "svc") != "1.0" {
		t.Fatalf("with both: %s, want the header's 1.0", r.String())
	}
}

// Values that need escaping survive the trip through a baggage header.
func TestRouteBaggageRoundTrip(t *testing.T) {
	v, err := rule.ParseValue(`{"svc-a":"1.0=90;1.1=10","svc b":"1.*"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Route{}.With(rule.TypeVersionWeight, v).With(rule.TypeRegion, rule.PlainValue("qa"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Baggage", "user=ann,n-d-version=1.5")
	out := withRouteBaggage(req, &want)
	hdr := out.Header.Get("Baggage")
	b, err := New(discovery.NewStatic(), WithBaggage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, ok, _ := inboundRoute(t, b, "/", http.Header{"Baggage": {hdr}})
	if !ok || got.String() != want.String() {
		t.Fatalf("baggage %q read back as %s, want %s", hdr, got.String(), want.String())
	}
	if !strings.Contains(hdr, "user=ann") {
		t.Errorf("baggage %q lost the caller's member", hdr)
	}
}

// recordHeader is a message header as Kafka clients hold them
// (franz-go's kgo.RecordHeader has the same shape).
type recordHeader struct {
	Key   string
	Value []byte
}

// recordHeaders adapts a record's headers to the route codec.
type recordHeaders struct{ h *[]recordHeader }

func (c recordHeaders) Get(key string) string {
	for _, h := range *c.h {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

func (c recordHeaders) Set(key, value string) {
	hs := (*c.h)[:0]
	for _, h := range *c.h {
		if !strings.EqualFold(h.Key, key) {
			hs = append(hs, h)
		}
	}
	if value != "" {
		hs = append(hs, recordHeader{Key: strings.ToLower(key), Value: []byte(value)})
	}
	*c.h = hs
}

func (c recordHeaders) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}

// A producer on 1.1, reached with the 1.1 route, publishes; the consumer,
// another service with no route of its own, calls svc-d: on 1.1, by the
// message's headers. The broker is a channel; the codec is the real one.
func TestRouteThroughMessageHeaders(t *testing.T) {
	n := newFakeNet()
	reg := discovery.NewStatic()
	d10, d11 := svcD(n, reg)
	producer, err := New(reg, WithIdentity(Identity{Service: "producer", Version: "1.1"}), WithForwardHeaders("X-User"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	consumer, err := New(reg, WithIdentity(Identity{Service: "consumer", Version: "1.0"}), WithForwardHeaders("X-User"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	type record struct {
		value   string
		headers []recordHeader
	}
	broker := make(chan record, 8)
	pub := producer.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := record{value: "order-7", headers: []recordHeader{{Key: "trace", Value: []byte("t")}}}
		InjectRoute(r.Context(), recordHeaders{&rec.headers})
		broker <- rec
	}))
	req := httptest.NewRequest(http.MethodPost, "/publish", nil)
	req.Header.Set("N-D-Version", `{"producer":"1.1","svc-d":"1.1"}`)
	req.Header.Set("X-User", "ann")
	pub.ServeHTTP(httptest.NewRecorder(), req)
	pub.ServeHTTP(httptest.NewRecorder(), req)
	close(broker)

	client := &http.Client{Transport: consumer.Transport(n)}
	var seen []string
	for rec := range broker {
		ctx, err := consumer.InboundMessage(context.Background(), recordHeaders{&rec.headers})
		if err != nil {
			t.Fatal(err)
		}
		if rt, _ := RouteFrom(ctx); rt.Header["X-User"] == nil || rt.Origin.Source != SourceHeader {
			t.Errorf("consumer route %s, headers %v, origin %v", rt.String(), rt.Header, rt.Origin)
		}
		seen = append(seen, fetchBody(t, client, ctx, "http://svc-d/"))
	}
	if strings.Join(seen, ",") != "1.1,1.1" || n.hitsOf(d10) != 0 || n.hitsOf(d11) != 2 {
		t.Fatalf("consumer's calls went to %v", seen)
	}
}

// A goroutine that outlives its request keeps the route with
// context.WithoutCancel; one started from context.Background() loses it,
// and the hop, which receives routed calls and is not an entry, says so
// once per service at debug level.
func TestRouteInGoroutines(t *testing.T) {
	n := newFakeNet()
	reg := discovery.NewStatic()
	svcD(n, reg)
	core, logs := observer.New(zap.DebugLevel)
	b, err := New(reg, WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := &http.Client{Transport: b.Transport(n)}
	var wg sync.WaitGroup
	results := make(chan string, 8)
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept := context.WithoutCancel(r.Context())
		wg.Add(2)
		go func() {
			defer wg.Done()
			results <- "kept:" + fetchBody(t, client, kept, "http://svc-d/")
		}()
		go func() {
			defer wg.Done()
			results <- "lost:" + fetchBody(t, client, context.Background(), "http://svc-d/")
		}()
	}))
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.Header.Set("N-D-Version", "1.1")
		h.ServeHTTP(httptest.NewRecorder(), req)
		cancel() // the request is over before its goroutines call
	}
	wg.Wait()
	close(results)
	var kept, lost []string
	for r := range results {
		if v, ok := strings.CutPrefix(r, "kept:"); ok {
			kept = append(kept, v)
		} else {
			lost = append(lost, strings.TrimPrefix(r, "lost:"))
		}
	}
	if strings.Join(kept, ",") != "1.1,1.1" {
		t.Errorf("WithoutCancel: calls went to %v, want 1.1 twice", kept)
	}
	if len(lost) != 2 {
		t.Errorf("background calls: %v", lost)
	}
	entries := logs.FilterMessageSnippet("call without a route").All()
	if len(entries) != 1 || entries[0].ContextMap()["service"] != "svc-d" {
		t.Errorf("logged %d times: %v", len(entries), entries)
	}
}

var _ pick.Carrier = recordHeaders{}

// A trusted edge lets no route in through baggage: routing members leave
// the baggage header its handler sees and the context's baggage, and the
// rest of the baggage stays.
func TestTrustedEdgeDropsRouteBaggage(t *testing.T) {
	b, err := New(discovery.NewStatic(), WithTrustedEdge(true), WithBaggage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var seen http.Header
	var ctxBaggage string
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		ctxBaggage = baggage.FromContext(r.Context()).String()
	}))
	bg, _ := baggage.Parse("n-d-version=1.1,user=ann,N_D_REGION=qa")
	req := httptest.NewRequestWithContext(baggage.ContextWithBaggage(context.Background(), bg), http.MethodGet, "/", nil)
	req.Header.Set("Baggage", "n-d-version=1.1,user=ann,N_D_REGION=qa")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got := seen.Get("Baggage"); got != "user=ann" {
		t.Errorf("the handler saw baggage %q", got)
	}
	if ctxBaggage != "user=ann" {
		t.Errorf("the context's baggage is %q", ctxBaggage)
	}
}

// Whatever baggage arrives, reading a route from it never panics, and a
// route read back from the baggage the transport writes is the same.
func FuzzRouteFromBaggage(f *testing.F) {
	for _, s := range []string{
		"n-d-version=1.1",
		"n-d-version=%7B%22svc-a%22%3A%221.1%22%7D,user=ann",
		"n-d-version-weight=1.0%3D90%3B1.1%3D10;prop",
		"n-d-region=,n-d-version=%ZZ",
		"N-D-VERSION=1.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bg, err := baggage.Parse(s)
		if err != nil {
			return
		}
		r, ok, _ := RouteFromBaggage(bg)
		if !ok {
			return
		}
		back, ok2, err := RouteFromBaggage(RouteToBaggage(baggage.Baggage{}, &r))
		if !ok2 && !r.IsZero() || err != nil || back.String() != r.String() {
			t.Fatalf("%q: %s read back as %s (%v)", s, r.String(), back.String(), err)
		}
	})
}
