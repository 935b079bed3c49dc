package grpcroute

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/discovery"
)

// A unary call is a client span, child of the caller's, naming the
// instance and version picked and the outcome; its context reaches the
// server in the metadata.
func TestRPCTrace(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	var mu sync.Mutex
	var seen []trace.SpanID
	reg := discovery.NewStatic()
	node := &hopNode{name: "svc-b", version: "1.1", id: "b11", next: func(ctx context.Context) (string, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, mdCarrier(md)))
		mu.Lock()
		seen = append(seen, sc.SpanID())
		fail := len(seen) == 2
		mu.Unlock()
		if fail {
			return "", status.Error(codes.Internal, "broken")
		}
		return "", nil
	}}
	_, port := serveHop(t, node)
	reg.Set("svc-b", discovery.Instance{ID: "b11", Service: "svc-b", Address: "127.0.0.1", Port: port, Version: "1.1"})
	ics := NewInterceptors(nil, WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	conn, err := grpc.NewClient("consul:///svc-b",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+observedName+`":{}}]}`),
		grpc.WithChainUnaryInterceptor(ics.UnaryClient()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, caller := tp.Tracer("test").Start(versionRoute(t, "1.1"), "caller")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := callHop(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := callHop(ctx, conn); status.Code(err) != codes.Internal {
		t.Fatalf("second call: %v", err)
	}
	caller.End()
	var calls []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "graylane.test.Hop/Call" {
			calls = append(calls, s)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d call spans, want 2", len(calls))
	}
	for i, s := range calls {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if s.Parent().SpanID() != caller.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %d: parent %v kind %v", i, s.Parent().SpanID(), s.SpanKind())
		}
		if attrs["graylane.instance"] != "b11" || attrs["graylane.version"] != "1.1" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		if want := map[int]string{0: "", 1: "INTERNAL"}[i]; attrs["error.type"] != want {
			t.Errorf("span %d error.type %q, want %q", i, attrs["error.type"], want)
		}
		if seen[i] != s.SpanContext().SpanID() {
			t.Errorf("call %d: the server saw parent %v, want the call's span %v", i, seen[i], s.SpanContext().SpanID())
		}
	}
}
