package grpcroute

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
)

type tracerOption struct{ tp trace.TracerProvider }

func (o tracerOption) applyResolver(*resolverOptions) {}

func (o tracerOption) applyBalancer(b *balancerOptions) { b.observe = b.observe || o.tp != nil }

func (o tracerOption) applyInterceptor(i *interceptorOptions) { i.tp = o.tp }

// WithTracerProvider makes the client interceptors record a client span
// per call, unary or stream (named by the method; with the picked
// instance, its version and the route's source; give the option to the
// balancer builder too, so that its pickers tell), whose span context goes
// out in the call's metadata through the propagator (WithPropagator). The
// stats handler (Interceptors.StatsHandler) adds a span per attempt under
// the call's: gRPC may retry inside a call, transparently or by a retry
// policy. The route decided at an entry is recorded by the balancer
// itself (balancer.WithTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option { return tracerOption{tp} }

type propagatorOption struct{ p propagation.TextMapPropagator }

func (o propagatorOption) applyInterceptor(i *interceptorOptions) { i.prop = o.p }

// WithPropagator sets the propagator that writes a traced call's span
// context into its outgoing metadata; nil, the default, means
// OpenTelemetry's global one (otel.GetTextMapPropagator) at the time of
// the call.
func WithPropagator(p propagation.TextMapPropagator) InterceptorOption { return propagatorOption{p} }

// callSpan starts the span of a call and returns ctx with it, its
// context written to the outgoing metadata.
func callSpan(ctx context.Context, tr trace.Tracer, prop propagation.TextMapPropagator, method string) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", strings.TrimPrefix(method, "/")),
	}
	attrs = routeAttrs(ctx, attrs)
	ctx, span := tr.Start(ctx, strings.TrimPrefix(method, "/"), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return propagate(ctx, prop), span
}

// attemptSpan starts the span of attempt n (from 1) of a call, a child
// of the call's span, named as grpc-go's own instrumentation names it
// ("Attempt.pkg.Service.Method"), and returns ctx with it, its context
// written to the attempt's outgoing metadata: the server's span is the
// attempt's child.
func attemptSpan(ctx context.Context, tr trace.Tracer, prop propagation.TextMapPropagator, method string, n int32) (context.Context, trace.Span) {
	m := strings.TrimPrefix(method, "/")
	attrs := []attribute.KeyValue{
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", m),
		attribute.Bool(balancer.AttrRetry, n > 1),
		attribute.Int64("previous-rpc-attempts", int64(n-1)),
	}
	attrs = routeAttrs(ctx, attrs)
	ctx, span := tr.Start(ctx, "Attempt."+strings.ReplaceAll(m, "/", "."), trace.WithAttributes(attrs...))
	return propagate(ctx, prop), span
}

// propagate returns ctx with the context of its span written to a copy of
// its outgoing metadata.
func propagate(ctx context.Context, prop propagation.TextMapPropagator) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	prop.Inject(ctx, propagation.TextMapCarrier(mdCarrier(md)))
	return metadata.NewOutgoingContext(ctx, md)
}

// endCallSpan ends a call's or an attempt's span with the instance in
// that served it (nil when none was picked) and the outcome.
func endCallSpan(span trace.Span, in *discovery.Instance, err error) {
	if in != nil {
		span.SetAttributes(
			attribute.String(balancer.AttrService, in.Service),
			attribute.String("graylane.instance", in.ID),
			attribute.String(balancer.AttrVersion, in.Version),
			attribute.String(balancer.AttrRegion, in.Region),
			attribute.String(balancer.AttrZone, in.Zone),
			attribute.String("server.address", in.Address),
			attribute.Int("server.port", in.Port),
		)
	}
	code := status.Code(err)
	span.SetAttributes(attribute.String("rpc.response.status_code", codeName(code)))
	if code != codes.OK {
		span.SetAttributes(attribute.String("error.type", codeName(code)))
		span.SetStatus(otelcodes.Error, status.Convert(err).Message())
	}
	span.End()
}
