package grpcroute

import (
	"context"
	"strings"
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
// unary client interceptor, labelled with the instance the picker chose,
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
)

type meterOption struct{ mp metric.MeterProvider }

func (o meterOption) applyResolver(*resolverOptions) {}

func (o meterOption) applyBalancer(b *balancerOptions) { b.observe = o.mp != nil }

func (o meterOption) applyInterceptor(i *interceptorOptions) { i.mp = o.mp }

// WithMeterProvider records the duration of unary calls made through the
// client interceptor (rpc.client.call.duration, with the picked
// instance's version, region and zone: give the option to the balancer
// builder too, so that its pickers tell) and of calls served through the
// server interceptors (rpc.server.call.duration, with the server's own
// service and version), with the route's source. error.type is the gRPC
// status code's name ("UNAVAILABLE") as OpenTelemetry's RPC conventions
// say: on the client for every code but OK; on the server for UNKNOWN,
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
	return t
}

// callObs is one client call under observation: the picker fills in the
// instance.
type callObs struct{ in *discovery.Instance }

type callObsKey struct{}

// picked tells the call's observer, if any, the instance picked.
func picked(ctx context.Context, in *discovery.Instance) {
	if o, ok := ctx.Value(callObsKey{}).(*callObs); ok {
		o.in = in
	}
}

// unaryClient records one unary call.
func (t *rpcTelemetry) unaryClient(ctx context.Context, cc *grpc.ClientConn, method string, call func(context.Context) error) error {
	o := &callObs{}
	ctx = context.WithValue(ctx, callObsKey{}, o)
	var span trace.Span
	if t.tracer != nil {
		ctx, span = callSpan(ctx, t.tracer, t.prop, method)
	}
	start := time.Now()
	err := call(ctx)
	d := time.Since(start)
	if span != nil {
		endCallSpan(span, o, err)
	}
	if t.client == nil {
		return err
	}
	code := status.Code(err)
	kv := make([]attribute.KeyValue, 0, 11)
	service := serviceOf(cc.Target())
	if o.in != nil {
		service = o.in.Service
		kv = append(kv, attribute.String(balancer.AttrVersion, o.in.Version))
		if o.in.Region != "" {
			kv = append(kv, attribute.String(balancer.AttrRegion, o.in.Region))
		}
		if o.in.Zone != "" {
			kv = append(kv, attribute.String(balancer.AttrZone, o.in.Zone))
		}
	}
	kv = append(kv, attribute.String(balancer.AttrService, service))
	kv = routeAttrs(ctx, kv)
	kv = append(kv, rpcAttrs(method, code)...)
	if code != codes.OK {
		et := codeName(code)
		if o.in == nil && code == codes.Unavailable {
			et = balancer.ErrorTypeNoInstance
		}
		kv = append(kv, attribute.String("error.type", et))
	}
	t.client.Record(ctx, d.Seconds(), metric.WithAttributeSet(attribute.NewSet(kv...)))
	return err
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
