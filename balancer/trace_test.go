package balancer

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

func spanAttr(s sdktrace.ReadOnlySpan, k string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// A retry shows as a second child span of the caller's span, each attempt
// naming its instance, version and outcome; the entry's decision is a span
// of its own; each attempt's span context reaches the instance it went to.
func TestTraceAttemptsAndDecision(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) }()

	net := newFakeNet()
	bad := discovery.Instance{ID: "b-bad", Service: "svc-b", Address: "10.2.0.1", Port: 1, Version: "1.1"}
	good := discovery.Instance{ID: "b-good", Service: "svc-b", Address: "10.2.0.1", Port: 2, Version: "1.1"}
	parents := map[trace.SpanID]string{} // the parent span each instance saw
	for _, in := range []discovery.Instance{bad, good} {
		status := http.StatusOK
		if in.ID == bad.ID {
			status = http.StatusServiceUnavailable
		}
		id := in.ID
		net.handle(in, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
			parents[sc.SpanID()] = id
			w.WriteHeader(status)
		}))
	}
	reg := discovery.NewStatic()
	reg.Set("svc-b", bad, good)
	r, err := rule.Parse([]byte(grayChainRule))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(reg, WithEntry(true), WithRule(r), withDraw(func() uint64 { return math.MaxUint64 }),
		WithTracerProvider(tp), WithMeterProvider(mp), WithPropagator(propagation.TraceContext{}),
		withSleep(func(context.Context, time.Duration) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := &http.Client{Transport: b.Transport(net)}
	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	// Round robin: one call at least meets the bad instance first.
	for range 2 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc-b/x", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	caller.End()

	var attempts, decisions []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch {
		case s.Name() == "graylane.route":
			decisions = append(decisions, s)
		case s.Name() == "GET svc-b":
			attempts = append(attempts, s)
		}
	}
	failed := net.hitsOf(bad)
	if failed == 0 || len(attempts) != 2+failed || len(decisions) != 2 {
		t.Fatalf("%d attempt spans and %d decision spans, %d failed attempts", len(attempts), len(decisions), failed)
	}
	retries := 0
	for _, s := range attempts {
		if s.Parent().SpanID() != caller.SpanContext().SpanID() {
			t.Errorf("attempt span's parent is %v, want the caller's", s.Parent().SpanID())
		}
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("attempt span kind %v", s.SpanKind())
		}
		inst, _ := spanAttr(s, "graylane.instance")
		if v, _ := spanAttr(s, AttrVersion); v.AsString() != "1.1" {
			t.Errorf("attempt version %q", v.AsString())
		}
		if src, _ := spanAttr(s, AttrRouteSource); src.AsString() != "gray" {
			t.Errorf("attempt route source %q", src.AsString())
		}
		et, failed := spanAttr(s, "error.type")
		if (inst.AsString() == bad.ID) != failed || (failed && et.AsString() != "503") {
			t.Errorf("attempt on %s: error.type %q", inst.AsString(), et.AsString())
		}
		if retry, _ := spanAttr(s, AttrRetry); retry.AsBool() {
			retries++
			if inst.AsString() != good.ID {
				t.Errorf("the retry went to %s", inst.AsString())
			}
		}
		if got := parents[s.SpanContext().SpanID()]; got != inst.AsString() {
			t.Errorf("the span of the attempt on %s reached %q", inst.AsString(), got)
		}
	}
	if retries != failed {
		t.Errorf("%d retry spans, want %d", retries, failed)
	}
	for _, s := range decisions {
		if c, _ := spanAttr(s, AttrCondition); c.AsString() != "canary" {
			t.Errorf("decision condition %q", c.AsString())
		}
		if rt, _ := spanAttr(s, "graylane.route"); rt.AsString() != `n-d-version={"svc-b":"1.1","svc-c":"1.1"}` {
			t.Errorf("decision route %q", rt.AsString())
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n := sums(t, &rm, MetricClientRetries, map[string]string{AttrService: "svc-b", AttrVersion: "1.1", "http.response.status_code": "200"}); int64(failed) != n {
		t.Errorf("retries = %d, want %d", n, failed)
	}
	if n, _ := points(t, &rm, MetricClientDuration, map[string]string{AttrRetry: "true"}); n != uint64(failed) {
		t.Errorf("retry attempts = %d, want %d", n, failed)
	}
	if n, _ := points(t, &rm, MetricClientDuration, map[string]string{"error.type": "503"}); n != uint64(failed) {
		t.Errorf("503 attempts = %d, want %d", n, failed)
	}
	if n := sums(t, &rm, MetricClientCalls, map[string]string{AttrOutcome: "success"}); n != 2 {
		t.Errorf("successful calls = %d, want 2", n)
	}
}

// With no instance to take it, an attempt records error.type no_instance
// and no version.
func TestMetricsNoInstance(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	reg := discovery.NewStatic()
	reg.Set("svc-b")
	b, err := New(reg, WithMeterProvider(mp), WithReadyWait(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := &http.Client{Transport: b.Transport(newFakeNet())}
	if _, err := client.Get("http://svc-b/x"); err == nil {
		t.Fatal("no error without instances")
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n, _ := points(t, &rm, MetricClientDuration, map[string]string{"error.type": ErrorTypeNoInstance, AttrVersion: "", AttrRouteSource: "none"}); n != 1 {
		t.Errorf("no_instance attempts = %d, want 1", n)
	}
	if n := sums(t, &rm, MetricClientCalls, map[string]string{AttrOutcome: "failure", "error.type": ErrorTypeNoInstance}); n != 1 {
		t.Errorf("failed calls = %d, want 1", n)
	}
}

// A handler that panics is recorded with error.type panic, and the panic
// goes on up.
func TestMetricsServerPanic(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	b, err := New(discovery.NewStatic(), WithMeterProvider(mp), WithIdentity(Identity{Service: "svc-a", Version: "1.1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := b.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n, _ := points(t, &rm, MetricServerDuration, map[string]string{AttrService: "svc-a", AttrVersion: "1.1", "error.type": "panic", "http.response.status_code": ""}); n != 1 {
		t.Errorf("panics = %d, want 1", n)
	}
}
