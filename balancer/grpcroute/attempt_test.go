package grpcroute

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/waittest"
)

// The test service graylane.test.Obs: a unary Call, a server-streaming
// Watch (two answers), a bidi Chat (an answer per message) and a
// server-streaming Hold (one answer, then nothing until the caller gives
// up), each answering with the serving instance's ID.
const obsService = "graylane.test.Obs"

// obsNode is one instance of graylane.test.Obs.
type obsNode struct {
	id       string
	watchErr error                              // Watch's status after its answers
	call     func(ctx context.Context) error    // Call's outcome, and Watch's before its answers; nil: OK
	parents  func(id string, span trace.SpanID) // told the span context a call arrived with
}

func (n *obsNode) answer(ss grpc.ServerStream) error {
	out := []byte(n.id)
	return ss.SendMsg(&out)
}

var obsDesc = grpc.ServiceDesc{
	ServiceName: obsService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			n := srv.(*obsNode)
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			if n.parents != nil {
				md, _ := metadata.FromIncomingContext(ctx)
				n.parents(n.id, trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, mdCarrier(md))).SpanID())
			}
			if n.call != nil {
				if err := n.call(ctx); err != nil {
					return nil, err
				}
			}
			out := []byte(n.id)
			return &out, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			n := srv.(*obsNode)
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			if n.call != nil {
				if err := n.call(ss.Context()); err != nil {
					return err // before any answer: gRPC may retry
				}
			}
			for range 2 {
				if err := n.answer(ss); err != nil {
					return err
				}
			}
			return n.watchErr
		},
	}, {
		StreamName:    "Chat",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			for {
				var in []byte
				if err := ss.RecvMsg(&in); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := srv.(*obsNode).answer(ss); err != nil {
					return err
				}
			}
		},
	}, {
		StreamName:    "Hold",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			if err := srv.(*obsNode).answer(ss); err != nil {
				return err
			}
			<-ss.Context().Done()
			return ss.Context().Err()
		},
	}},
}

var (
	watchDesc = grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}
	chatDesc  = grpc.StreamDesc{StreamName: "Chat", ServerStreams: true, ClientStreams: true}
	holdDesc  = grpc.StreamDesc{StreamName: "Hold", ServerStreams: true}
)

// obsWorld is a service of obsNodes behind a channel whose interceptors
// and stats handler record into a manual reader and a span recorder.
type obsWorld struct {
	reader *sdkmetric.ManualReader
	sr     *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	conn   *grpc.ClientConn
}

// newObsWorld serves nodes as instances of one service (versions and
// zones as given) and dials it with the observed policy, round-robin, and
// a retry policy that retries Call and Watch once on UNAVAILABLE.
func newObsWorld(t *testing.T, nodes []*obsNode, instances []discovery.Instance) *obsWorld {
	t.Helper()
	w := &obsWorld{reader: sdkmetric.NewManualReader(), sr: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(w.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	w.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(w.sr))
	t.Cleanup(func() { _ = w.tp.Shutdown(context.Background()) })
	service := serviceName("svc-obs")
	reg := discovery.NewStatic()
	for i, n := range nodes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
		srv.RegisterService(&obsDesc, n)
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		instances[i].ID, instances[i].Service = n.id, service
		instances[i].Address, instances[i].Port = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
	}
	reg.Set(service, instances...)
	ics := NewInterceptors(nil, WithMeterProvider(mp), WithTracerProvider(w.tp), WithPropagator(propagation.TraceContext{}))
	conn, err := grpc.NewClient("consul:///"+service, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"` + observedName + `":{"policy":"round-robin"}}],
			"methodConfig":[{"name":[{"service":"` + obsService + `","method":"Call"},{"service":"` + obsService + `","method":"Watch"}],
				"retryPolicy":{"maxAttempts":2,"initialBackoff":"0.001s","maxBackoff":"0.001s","backoffMultiplier":1,
					"retryableStatusCodes":["UNAVAILABLE"]}}]}`),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})),
	}, ics.DialOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	w.conn = conn
	return w
}

// count sums the points of the histogram name whose attributes include
// want ("" as a value: absent).
func (w *obsWorld) count(t *testing.T, name string, want map[string]string) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := w.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rpcCount(t, &rm, name, want)
}

// spans returns the ended spans named name.
func (w *obsWorld) spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range w.sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[string]string {
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	return attrs
}

// recv reads the answers of st until its end, which it returns (nil for
// io.EOF).
func recv(st grpc.ClientStream) ([]string, error) {
	var got []string
	for {
		var out []byte
		if err := st.RecvMsg(&out); err == io.EOF {
			return got, nil
		} else if err != nil {
			return got, err
		}
		got = append(got, string(out))
	}
}

// Streams are recorded on the client side once each, from their start to
// their end, under the instance that served them and with their status: a
// server-streaming and a bidi stream ending OK, a server stream ending
// with an error after its answers, and a stream its caller cancelled.
func TestStreamObservability(t *testing.T) {
	n10 := &obsNode{id: "b10"}
	n11 := &obsNode{id: "b11", watchErr: status.Error(codes.FailedPrecondition, "stale")}
	w := newObsWorld(t, []*obsNode{n10, n11}, []discovery.Instance{
		{Version: "1.0", Region: "r1", Zone: "z1"},
		{Version: "1.1", Region: "r1", Zone: "z2"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	route := func(v string) context.Context {
		r, _ := balancer.RouteFrom(versionRoute(t, v))
		return balancer.WithRoute(ctx, r)
	}

	open := func(ctx context.Context, desc *grpc.StreamDesc, method string) grpc.ClientStream {
		t.Helper()
		st, err := w.conn.NewStream(ctx, desc, "/"+obsService+"/"+method)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	in := []byte("x")

	// Server-streaming, to 1.0: OK.
	st := open(route("1.0"), &watchDesc, "Watch")
	if err := st.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if got, err := recv(st); err != nil || len(got) != 2 || got[0] != "b10" {
		t.Fatalf("Watch at 1.0: %v, %v", got, err)
	}
	// Bidi, to 1.1: OK.
	st = open(route("1.1"), &chatDesc, "Chat")
	for range 3 {
		if err := st.SendMsg(&in); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if got, err := recv(st); err != nil || len(got) != 3 || got[2] != "b11" {
		t.Fatalf("Chat at 1.1: %v, %v", got, err)
	}
	// Server-streaming, to 1.1: FAILED_PRECONDITION after its answers.
	st = open(route("1.1"), &watchDesc, "Watch")
	if err := st.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	if got, err := recv(st); status.Code(err) != codes.FailedPrecondition || len(got) != 2 {
		t.Fatalf("Watch at 1.1: %v, %v", got, err)
	}
	// Cancelled by the caller after its first answer, without reading on.
	hctx, hcancel := context.WithCancel(route("1.0"))
	st = open(hctx, &holdDesc, "Hold")
	if err := st.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := st.RecvMsg(&out); err != nil || string(out) != "b10" {
		t.Fatalf("Hold: %q, %v", out, err)
	}
	hcancel()

	// gRPC ends a cancelled stream on its own goroutine: wait for it.
	waittest.Until(t, "the cancelled stream's span", func() bool { return len(w.spans(obsService+"/Hold")) == 1 })
	for _, tt := range []struct {
		method string
		want   map[string]string
	}{
		{"Watch", map[string]string{balancer.AttrVersion: "1.0", balancer.AttrRegion: "r1", balancer.AttrZone: "z1",
			"rpc.response.status_code": "OK", "error.type": "", balancer.AttrRouteSource: "none"}},
		{"Chat", map[string]string{balancer.AttrVersion: "1.1", balancer.AttrZone: "z2", "rpc.response.status_code": "OK", "error.type": ""}},
		{"Watch", map[string]string{balancer.AttrVersion: "1.1", balancer.AttrZone: "z2", "error.type": "FAILED_PRECONDITION"}},
		{"Hold", map[string]string{balancer.AttrVersion: "1.0", "rpc.response.status_code": "CANCELLED", "error.type": "CANCELLED"}},
	} {
		tt.want["rpc.method"] = obsService + "/" + tt.method
		if got := w.count(t, MetricClientDuration, tt.want); got != 1 {
			t.Errorf("%s %v: %d streams, want 1", MetricClientDuration, tt.want, got)
		}
	}
	if got := w.count(t, MetricClientDuration, map[string]string{}); got != 4 {
		t.Errorf("%s: %d streams in all, want 4", MetricClientDuration, got)
	}

	// One client span per stream, with the instance and the outcome.
	want := map[string][]map[string]string{
		"Watch": {{"graylane.instance": "b10", "error.type": ""}, {"graylane.instance": "b11", "error.type": "FAILED_PRECONDITION"}},
		"Chat":  {{"graylane.instance": "b11", balancer.AttrVersion: "1.1", "error.type": ""}},
		"Hold":  {{"graylane.instance": "b10", "rpc.response.status_code": "CANCELLED", "error.type": "CANCELLED"}},
	}
	for method, wants := range want {
		spans := w.spans(obsService + "/" + method)
		if len(spans) != len(wants) {
			t.Fatalf("%s: %d spans, want %d", method, len(spans), len(wants))
		}
		for i, s := range spans {
			attrs := spanAttrs(s)
			if s.SpanKind() != trace.SpanKindClient {
				t.Errorf("%s span %d: kind %v", method, i, s.SpanKind())
			}
			for k, v := range wants[i] {
				if attrs[k] != v {
					t.Errorf("%s span %d: %s = %q, want %q (%v)", method, i, k, attrs[k], v, attrs)
				}
			}
		}
	}
	// Every stream had one attempt.
	if got := w.count(t, MetricClientAttemptDuration, map[string]string{}); got != 4 {
		t.Errorf("%s: %d attempts, want 4", MetricClientAttemptDuration, got)
	}
}

// A call that a retry policy retries after its first attempt failed with
// UNAVAILABLE at one instance is one call span, with two attempt spans
// under it at different instances, the first failed; the server that
// answered saw the second attempt's span as its parent. Metrics record the
// call once, under the instance that served it, and each attempt; so for
// a stream retried before its first answer.
func TestRetriedCallAttempts(t *testing.T) {
	var armed atomic.Bool
	var calls atomic.Int32
	var mu sync.Mutex
	parents := map[string]trace.SpanID{}
	fail := func(context.Context) error {
		if armed.Load() && calls.Add(1) == 1 {
			return status.Error(codes.Unavailable, "overloaded")
		}
		return nil
	}
	record := func(id string, span trace.SpanID) {
		mu.Lock()
		defer mu.Unlock()
		parents[id] = span
	}
	w := newObsWorld(t,
		[]*obsNode{{id: "a", call: fail, parents: record}, {id: "b", call: fail, parents: record}},
		[]discovery.Instance{{Version: "1.0", Zone: "z-a"}, {Version: "1.0", Zone: "z-b"}})
	ctx, cancel := context.WithTimeout(versionRoute(t, "1.0"), 10*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	// Until both endpoints are ready, the picker knows one: call until
	// both have answered, then count from there.
	seen := map[string]bool{}
	waittest.Until(t, "both instances to answer", func() bool {
		if err := w.conn.Invoke(ctx, "/"+obsService+"/Call", &in, &out); err != nil {
			t.Fatal(err)
		}
		seen[string(out)] = true
		return len(seen) == 2
	})
	callsBefore := w.count(t, MetricClientDuration, map[string]string{})
	attemptsBefore := w.count(t, MetricClientAttemptDuration, map[string]string{})
	armed.Store(true)

	ctx, caller := w.tp.Tracer("test").Start(ctx, "caller")
	if err := w.conn.Invoke(ctx, "/"+obsService+"/Call", &in, &out); err != nil {
		t.Fatal(err)
	}
	caller.End()
	if calls.Load() != 2 {
		t.Fatalf("%d attempts reached the servers, want 2", calls.Load())
	}

	var callSpans []sdktrace.ReadOnlySpan
	for _, s := range w.spans(obsService + "/Call") {
		if s.Parent().SpanID() == caller.SpanContext().SpanID() {
			callSpans = append(callSpans, s)
		}
	}
	if len(callSpans) != 1 {
		t.Fatalf("%d call spans, want 1", len(callSpans))
	}
	call := callSpans[0]
	if attrs := spanAttrs(call); attrs["graylane.instance"] != string(out) || attrs["error.type"] != "" {
		t.Errorf("call span: %v, want the instance that answered, %s", attrs, out)
	}
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range w.spans("Attempt." + obsService + ".Call") {
		if s.SpanContext().TraceID() == call.SpanContext().TraceID() {
			attempts = append(attempts, s)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(attempts))
	}
	first, second := spanAttrs(attempts[0]), spanAttrs(attempts[1])
	for i, s := range attempts {
		if s.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("attempt %d: parent %v, want the call's span %v", i, s.Parent().SpanID(), call.SpanContext().SpanID())
		}
	}
	if first["graylane.instance"] == "" || first["graylane.instance"] == second["graylane.instance"] {
		t.Errorf("attempts at %q and %q, want two instances", first["graylane.instance"], second["graylane.instance"])
	}
	if first["error.type"] != "UNAVAILABLE" || first[balancer.AttrRetry] != "false" || first["previous-rpc-attempts"] != "0" {
		t.Errorf("first attempt: %v", first)
	}
	if second["error.type"] != "" || second[balancer.AttrRetry] != "true" || second["previous-rpc-attempts"] != "1" ||
		second["graylane.instance"] != string(out) {
		t.Errorf("second attempt: %v (answered by %s)", second, out)
	}
	mu.Lock()
	if got := parents[string(out)]; got != attempts[1].SpanContext().SpanID() {
		t.Errorf("server %s saw parent %v, want the second attempt's span %v", out, got, attempts[1].SpanContext().SpanID())
	}
	mu.Unlock()

	for _, tt := range []struct {
		name string
		want map[string]string
		n    uint64
	}{
		// Every call before succeeded at its first attempt.
		{MetricClientDuration, map[string]string{balancer.AttrVersion: "1.0", "error.type": ""}, callsBefore + 1},
		{MetricClientDuration, map[string]string{}, callsBefore + 1},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrVersion: "1.0", "error.type": "UNAVAILABLE", balancer.AttrRetry: ""}, 1},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrVersion: "1.0", "error.type": "", balancer.AttrRetry: "true",
			"rpc.method": obsService + "/Call"}, 1},
		{MetricClientAttemptDuration, map[string]string{}, attemptsBefore + 2},
	} {
		if got := w.count(t, tt.name, tt.want); got != tt.n {
			t.Errorf("%s %v: %d, want %d", tt.name, tt.want, got, tt.n)
		}
	}

	// A stream retried before its first answer is recorded under the
	// instance that answered it, not the one picked first.
	calls.Store(0)
	st, err := w.conn.NewStream(ctx, &watchDesc, "/"+obsService+"/Watch")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got, err := recv(st)
	if err != nil || len(got) != 2 || calls.Load() != 2 {
		t.Fatalf("Watch: %v, %v after %d attempts, want two answers after 2", got, err, calls.Load())
	}
	served := map[string]string{"a": "z-a", "b": "z-b"}[got[0]]
	other := map[string]string{"z-a": "z-b", "z-b": "z-a"}[served]
	watch := map[string]string{"rpc.method": obsService + "/Watch"}
	for _, tt := range []struct {
		name string
		want map[string]string
	}{
		{MetricClientDuration, map[string]string{balancer.AttrZone: served, "error.type": ""}},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrZone: other, "error.type": "UNAVAILABLE", balancer.AttrRetry: ""}},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrZone: served, "error.type": "", balancer.AttrRetry: "true"}},
	} {
		for k, v := range watch {
			tt.want[k] = v
		}
		if n := w.count(t, tt.name, tt.want); n != 1 {
			t.Errorf("%s %v: %d, want 1", tt.name, tt.want, n)
		}
	}
	if n := w.count(t, MetricClientDuration, watch); n != 1 {
		t.Errorf("%s: %d Watch streams, want 1", MetricClientDuration, n)
	}
	waittest.Until(t, "the Watch span", func() bool { return len(w.spans(obsService+"/Watch")) == 1 })
	if attrs := spanAttrs(w.spans(obsService + "/Watch")[0]); attrs["graylane.instance"] != got[0] {
		t.Errorf("Watch span at %q, want %q, which answered", attrs["graylane.instance"], got[0])
	}
}

// A call is recorded under its last attempt's instance: none when the
// retry found no instance to pick, though the first attempt had one.
func TestCallIsItsLastAttempts(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	ics := NewInterceptors(nil, WithMeterProvider(mp))
	sh := ics.StatsHandler()
	cc, err := grpc.NewClient("passthrough:///svc-b", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	a := &discovery.Instance{ID: "b1", Service: "svc-b", Version: "1.1"}
	unavailable := status.Error(codes.Unavailable, "down")
	err = ics.UnaryClient()(context.Background(), hopCall, nil, nil, cc,
		func(ctx context.Context, method string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			info := &stats.RPCTagInfo{FullMethodName: method}
			first := sh.TagRPC(ctx, info)
			picked(first, a)
			sh.HandleRPC(first, &stats.End{Client: true, Error: unavailable})
			second := sh.TagRPC(ctx, info) // finds no instance
			sh.HandleRPC(second, &stats.End{Client: true, Error: unavailable})
			return unavailable
		})
	if status.Code(err) != codes.Unavailable {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want map[string]string
	}{
		{MetricClientDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "", "error.type": balancer.ErrorTypeNoInstance}},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrVersion: "1.1", "error.type": "UNAVAILABLE", balancer.AttrRetry: ""}},
		{MetricClientAttemptDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "", "error.type": balancer.ErrorTypeNoInstance, balancer.AttrRetry: "true"}},
	} {
		if n := rpcCount(t, &rm, tt.name, tt.want); n != 1 {
			t.Errorf("%s %v: %d, want 1", tt.name, tt.want, n)
		}
	}
}
