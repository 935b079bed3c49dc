package balancer

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/discovery"
)

// This file makes the balancer's spans: the route decided at an entry, and
// each attempt of the transport.

var (
	attrStatus    = attribute.Key("http.response.status_code")
	attrErrorType = attribute.Key("error.type")
)

// attemptSpan starts the span of attempt c.n of c, a child of the caller's
// span: a retry is a second child.
func (t *telemetry) attemptSpan(ctx context.Context, c *call, req *http.Request) trace.Span {
	o := c.route.Origin
	attrs := []attribute.KeyValue{
		attribute.String(AttrService, c.service),
		attribute.String("http.request.method", methodOf(req.Method)),
		attribute.String(AttrRouteSource, string(o.SourceOrNone())),
		attribute.Bool(AttrRetry, c.n > 1),
		attribute.Int("http.request.resend_count", c.n-1),
	}
	if o.Condition != "" {
		attrs = append(attrs, attribute.String(AttrCondition, o.Condition))
	}
	if !c.route.IsZero() {
		attrs = append(attrs, attribute.String("graylane.route", c.route.String()))
	}
	_, s := t.tracer.Start(ctx, methodOf(req.Method)+" "+c.service,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return s
}

// spanInstance adds the picked instance to an attempt's span. A span
// carries the instance's address whatever WithInstanceMetrics says: a
// trace is one request, not a time series.
func spanInstance(s trace.Span, in *discovery.Instance) {
	s.SetAttributes(
		attribute.String("graylane.instance", in.ID),
		attribute.String(AttrVersion, in.Version),
		attribute.String(AttrRegion, in.Region),
		attribute.String(AttrZone, in.Zone),
		attribute.String("server.address", in.Address),
		attribute.Int("server.port", in.Port),
	)
}

// decided records the route an entry's rule decided as a span: which tier
// and condition decided, and the route.
func (t *telemetry) decided(ctx context.Context, r *Route) {
	if t == nil || t.tracer == nil {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String(AttrRouteSource, string(r.Origin.SourceOrNone())),
		attribute.String("graylane.route", r.String()),
	}
	if r.Origin.Condition != "" {
		attrs = append(attrs, attribute.String(AttrCondition, r.Origin.Condition))
	}
	_, s := t.tracer.Start(ctx, "graylane.route", trace.WithAttributes(attrs...))
	s.End()
}

// headerPropagation is an http.Header as a propagator's carrier.
func headerPropagation(h http.Header) propagation.TextMapCarrier { return propagation.HeaderCarrier(h) }
