package grpcroute

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
)

// This file records the gRPC metrics: rpc.client.call.duration in the
// client interceptors, labelled with the instance the picker chose,
// and rpc.server.call.duration in the server interceptors, labelled with
// the server's own identity (balancer.WithIdentity). The attribute keys
// are the balancer's (balancer.AttrService, ...) and OpenTelemetry's RPC
// conventions' (rpc.system.name, rpc.method, rpc.response.status_code,
// error.type).

// The metric names, as OpenTelemetry's RPC semantic conventions name them;
// through OpenTelemetry's Prometheus exporter they read
// rpc_client_call_duration_seconds and rpc_server_call_duration_seconds.
const (
	MetricClientDuration = "rpc.client.call.duration"
	MetricServerDuration = "rpc.server.call.duration"
	// MetricClientAttemptDuration is recorded per attempt of a call by the
	// stats handler (Interceptors.StatsHandler), under the name and unit
	// of grpc-go's own OpenTelemetry instrumentation (package
	// google.golang.org/grpc/stats/opentelemetry); through the Prometheus
	// exporter it reads grpc_client_attempt_duration_seconds.
	MetricClientAttemptDuration = "grpc.client.attempt.duration"
)

type meterOption struct{ mp metric.MeterProvider }

func (o meterOption) applyResolver(*resolverOptions) {}

func (o meterOption) applyBalancer(b *balancerOptions) { b.observe = o.mp != nil }

func (o meterOption) applyInterceptor(i *interceptorOptions) { i.mp = o.mp }

// WithMeterProvider records the duration of calls, unary and streams,
// made through the client interceptors (rpc.client.call.duration, with the
// picked instance's version, region and zone: give the option to the
// balancer builder too, so that its pickers tell), of each attempt of a
// call through the stats handler (grpc.client.attempt.duration, see
// Interceptors.StatsHandler) and of calls served through the server
// interceptors (rpc.server.call.duration, with the server's own service
// and version), with the route's source. error.type is the gRPC status
// code's name ("UNAVAILABLE") as OpenTelemetry's RPC conventions say: on
// the client for every code but OK; on the server for UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS,
// and "panic" for a handler that panicked; "no_instance" on the client
// when no instance was picked for an UNAVAILABLE call. Without it nothing
// is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option { return meterOption{mp} }

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/graylane/graylane/balancer/grpcroute"

// rpcTelemetry is the interceptors' instruments; nil without a meter or
// tracer provider.
type rpcTelemetry struct {
	client, server metric.Float64Histogram // nil without a meter provider
	attempt        metric.Float64Histogram // nil without a meter provider
	tracer         trace.Tracer            // nil without a tracer provider
	prop           propagation.TextMapPropagator
}

var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func newRPCTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, prop propagation.TextMapPropagator) *rpcTelemetry {
	if mp == nil && tp == nil {
		return nil
	}
	t := &rpcTelemetry{prop: prop}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
	}
	if mp == nil {
		return t
	}
	m := mp.Meter(instrumentationName)
	// The API's instruments never fail to build with these arguments;
	// should an SDK refuse, it returns a working no-op instrument.
	t.client, _ = m.Float64Histogram(MetricClientDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of gRPC client calls."), metric.WithExplicitBucketBoundaries(durationBounds...))
	t.server, _ = m.Float64Histogram(MetricServerDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of gRPC server calls."), metric.WithExplicitBucketBoundaries(durationBounds...))
	t.attempt, _ = m.Float64Histogram(MetricClientAttemptDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of gRPC client call attempts."), metric.WithExplicitBucketBoundaries(durationBounds...))
	return t
}

// callObs is one client call, or one attempt of a call, under
// observation: the picker fills in the instance (picked). A call's
// attempts (attempt.go) each have their own, whose call is the call's.
type callObs struct {
	in       atomic.Pointer[discovery.Instance] // the last instance picked
	target   string                             // the channel's target; "" unknown
	method   string                             // the full method name
	call     *callObs                           // an attempt's call; nil for a call
	span     trace.Span                         // an attempt's span; nil untraced
	n        int32                              // an attempt's number, from 1
	attempts atomic.Int32                       // a call's attempts so far
	ended    atomic.Bool                        // a stream's end is recorded
}

type callObsKey struct{}

// picked tells the call's or the attempt's observer, if any, the instance
// picked: an attempt tells its call too, so that a call retried at
// another instance is recorded under the one that served it.
func picked(ctx context.Context, in *discovery.Instance) {
	if o, ok := ctx.Value(callObsKey{}).(*callObs); ok {
		o.in.Store(in)
		if o.call != nil {
			o.call.in.Store(in)
		}
	}
}

// startCall returns ctx with a call's observer and, traced, its span.
func (t *rpcTelemetry) startCall(ctx context.Context, target, method string) (context.Context, *callObs, trace.Span) {
	o := &callObs{target: target, method: method}
	ctx = context.WithValue(ctx, callObsKey{}, o)
	var span trace.Span
	if t.tracer != nil {
		ctx, span = callSpan(ctx, t.tracer, t.prop, method)
	}
	return ctx, o, span
}

// unaryClient records one unary call.
func (t *rpcTelemetry) unaryClient(ctx context.Context, cc *grpc.ClientConn, method string, call func(context.Context) error) error {
	ctx, o, span := t.startCall(ctx, cc.Target(), method)
	start := time.Now()
	err := call(ctx)
	t.endCall(ctx, o, span, time.Since(start), err)
	return err
}

// streamClient records one stream from its start to its end, as grpc-go's
// own OpenTelemetry instrumentation does: gRPC calls back (grpc.OnFinish)
// once the stream has ended, whichever way: RecvMsg returning io.EOF (the
// server's OK) or an error, a failed SendMsg, the stream's context ending
// (gRPC watches it, for every stream, until the stream ends) or the
// channel closing. A stream whose creation fails is recorded at once. No
// goroutine of ours waits for the end; a stream that its caller neither
// drains nor cancels is recorded when its context ends, as gRPC releases
// it only then.
func (t *rpcTelemetry) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts []grpc.CallOption) (grpc.ClientStream, error) {
	ctx, o, span := t.startCall(ctx, cc.Target(), method)
	start := time.Now()
	end := func(err error) {
		if o.ended.CompareAndSwap(false, true) {
			t.endCall(ctx, o, span, time.Since(start), err)
		}
	}
	cs, err := streamer(ctx, desc, cc, method, append(opts[:len(opts):len(opts)], grpc.OnFinish(end))...)
	if err != nil {
		// gRPC has called end already, unless the stream failed before it
		// existed (a channel in shutdown, a bad service config).
		end(err)
	}
	return cs, err
}

// endCall ends the span of a call observed by o, if any, and records its
// duration d.
func (t *rpcTelemetry) endCall(ctx context.Context, o *callObs, span trace.Span, d time.Duration, err error) {
	in := o.in.Load()
	if span != nil {
		endCallSpan(span, in, err)
	}
	if t.client != nil {
		t.client.Record(ctx, d.Seconds(), metric.WithAttributeSet(clientAttrs(ctx, o.target, o.method, in, err, false)))
	}
}

// clientAttrs returns the attributes of a client call or attempt to the
// service target names, served by in (nil when none was picked), that
// ended with err; retry marks an attempt after the first.
func clientAttrs(ctx context.Context, target, method string, in *discovery.Instance, err error, retry bool) attribute.Set {
	code := status.Code(err)
	kv := make([]attribute.KeyValue, 0, 12)
	service := serviceOf(target)
	if in != nil {
		service = in.Service
		kv = append(kv, attribute.String(balancer.AttrVersion, in.Version))
		if in.Region != "" {
			kv = append(kv, attribute.String(balancer.AttrRegion, in.Region))
		}
		if in.Zone != "" {
			kv = append(kv, attribute.String(balancer.AttrZone, in.Zone))
		}
	}
	if service != "" {
		kv = append(kv, attribute.String(balancer.AttrService, service))
	}
	kv = routeAttrs(ctx, kv)
	kv = append(kv, rpcAttrs(method, code)...)
	if code != codes.OK {
		et := codeName(code)
		if in == nil && code == codes.Unavailable {
			et = balancer.ErrorTypeNoInstance
		}
		kv = append(kv, attribute.String("error.type", et))
	}
	if retry {
		kv = append(kv, attribute.Bool(balancer.AttrRetry, true))
	}
	return attribute.NewSet(kv...)
}

// served records one call served by a server whose identity is id, that
// ended with err, or panicked.
func (t *rpcTelemetry) served(ctx context.Context, id balancer.Identity, method string, d time.Duration, err error, panicked bool) {
	code := status.Code(err)
	kv := []attribute.KeyValue{
		attribute.String(balancer.AttrService, id.Service),
		attribute.String(balancer.AttrVersion, id.Version),
	}
	kv = routeAttrs(ctx, kv)
	switch {
	case panicked:
		kv = append(kv, rpcAttrs(method, codes.Unknown)...)
		kv = append(kv, attribute.String("error.type", balancer.ErrorTypePanic))
	default:
		kv = append(kv, rpcAttrs(method, code)...)
		switch code {
		case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
			kv = append(kv, attribute.String("error.type", codeName(code)))
		}
	}
	t.server.Record(ctx, d.Seconds(), metric.WithAttributeSet(attribute.NewSet(kv...)))
}

// serve runs handler under observation.
func (t *rpcTelemetry) serve(ctx context.Context, id balancer.Identity, method string, handler func() error) (err error) {
	if t.server == nil {
		return handler()
	}
	start := time.Now()
	panicked := true
	defer func() { t.served(ctx, id, method, time.Since(start), err, panicked) }()
	err = handler()
	panicked = false
	return err
}

func routeAttrs(ctx context.Context, kv []attribute.KeyValue) []attribute.KeyValue {
	src, cond := balancer.SourceNone, ""
	if r, ok := balancer.RouteFrom(ctx); ok {
		src, cond = r.Origin.SourceOrNone(), r.Origin.Condition
	}
	kv = append(kv, attribute.String(balancer.AttrRouteSource, string(src)))
	if cond != "" {
		kv = append(kv, attribute.String(balancer.AttrCondition, cond))
	}
	return kv
}

func rpcAttrs(method string, code codes.Code) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", strings.TrimPrefix(method, "/")),
		attribute.String("rpc.response.status_code", codeName(code)),
	}
}

// serviceOf returns the service a target names: its last path element.
func serviceOf(target string) string {
	if i := strings.LastIndexByte(target, '/'); i >= 0 {
		return target[i+1:]
	}
	return target
}

// codeName returns a status code's name as OpenTelemetry writes it
// ("DEADLINE_EXCEEDED").
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "_OTHER"
}

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}
