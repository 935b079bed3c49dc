package balancer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
)

// This file holds the balancer's OpenTelemetry instruments and the
// attribute sets they record with; metrics.go records calls and attempts,
// trace.go their spans.

// RouteSource says what set a route's version constraint at this hop; see
// [pick.Source]. Metrics carry it as graylane.route.source.
type RouteSource = pick.Source

// The route sources; see package pick.
const (
	SourceNone      = pick.SourceNone
	SourceBlueGreen = pick.SourceBlueGreen
	SourceGray      = pick.SourceGray
	SourceStrategy  = pick.SourceStrategy
	SourceHeader    = pick.SourceHeader
)

// The metric names, as OpenTelemetry's HTTP semantic conventions and
// graylane name them. Through OpenTelemetry's Prometheus exporter they
// read http_client_request_duration_seconds, http_server_request_duration_seconds,
// graylane_client_retries_total and graylane_client_calls_total.
const (
	MetricClientDuration = "http.client.request.duration"
	MetricServerDuration = "http.server.request.duration"
	MetricClientRetries  = "graylane.client.retries"
	MetricClientCalls    = "graylane.client.calls"
)

// The attribute keys graylane adds to OpenTelemetry's (http.request.method,
// http.response.status_code, error.type, server.address, server.port).
const (
	AttrService     = "graylane.service"      // the callee (client side) or the server's own service
	AttrVersion     = "graylane.version"      // the picked instance's version, or the server's own
	AttrRegion      = "graylane.region"       // the picked instance's region
	AttrZone        = "graylane.zone"         // the picked instance's zone
	AttrRouteSource = "graylane.route.source" // a RouteSource
	AttrCondition   = "graylane.condition"    // the blue-green or gray condition id
	AttrRetry       = "graylane.retry"        // the attempt is a retry
	AttrOutcome     = "graylane.outcome"      // a call's outcome: "success" or "failure"
)

// The values of error.type that are not a status code. An HTTP answer of
// 500 or more sets error.type to its code ("503"); an answer below 500 is
// not a failure (a 4xx is the caller's mistake and says nothing about the
// version that answered; OpenTelemetry's client convention would count it,
// graylane does not, on either side).
const (
	ErrorTypeConnection  = "connection"   // dial refused, reset, EOF before the answer
	ErrorTypeTimeout     = "timeout"      // the attempt timed out (dial, headers, AttemptTimeout)
	ErrorTypeNoInstance  = "no_instance"  // no instance could take the request (ErrNoInstance)
	ErrorTypeBreakerOpen = "breaker_open" // a circuit breaker refused the attempt (ErrBreakerOpen)
	ErrorTypeCanceled    = "canceled"     // the caller's context ended
	ErrorTypePanic       = "panic"        // the server's handler panicked
	ErrorTypeOther       = "_OTHER"       // any other error
)

// ErrorTyper is implemented by errors that name their own error.type (a
// circuit breaker's refusal names ErrorTypeBreakerOpen).
type ErrorTyper interface {
	ErrorType() string
}

// errorType returns the error.type of an attempt's outcome, "" for a
// success.
func errorType(status int, err error) string {
	if err == nil {
		if status >= 500 {
			return strconv.Itoa(status)
		}
		return ""
	}
	var et ErrorTyper
	if errors.As(err, &et) {
		return et.ErrorType()
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrBreakerOpen):
		return ErrorTypeBreakerOpen
	case errors.Is(err, ErrNoInstance):
		return ErrorTypeNoInstance
	case errors.Is(err, context.Canceled):
		return ErrorTypeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrorTypeTimeout
	case errors.Is(err, ErrClosed):
		return ErrorTypeOther
	}
	return ErrorTypeConnection
}

// durationBounds are the histograms' bucket boundaries in seconds,
// OpenTelemetry's advice for HTTP durations.
var durationBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// telemetry is the balancer's instruments; nil when neither a meter nor a
// tracer provider was given, so that the default costs one nil check.
type telemetry struct {
	metrics bool
	client  metric.Float64Histogram
	server  metric.Float64Histogram
	retries metric.Int64Counter
	calls   metric.Int64Counter
	sets    setCache
	// instance adds server.address and server.port (WithInstanceMetrics).
	instance bool
	traffic  *traffic

	tracer trace.Tracer // nil without a tracer provider
	prop   func() propagation.TextMapPropagator
	now    func() time.Time
}

// instrumentationName names graylane's meter and tracer.
const instrumentationName = "github.com/graylane/graylane/balancer"

func newTelemetry(o *options) (*telemetry, error) {
	if o.meterProvider == nil && o.tracerProvider == nil {
		return nil, nil
	}
	t := &telemetry{instance: o.instanceMetrics, now: o.now, prop: otel.GetTextMapPropagator}
	if o.tracerProvider != nil {
		t.tracer = o.tracerProvider.Tracer(instrumentationName)
	}
	if p := o.propagator; p != nil {
		t.prop = func() propagation.TextMapPropagator { return p }
	}
	if o.meterProvider == nil {
		return t, nil
	}
	m := o.meterProvider.Meter(instrumentationName)
	var err error
	t.client, err = m.Float64Histogram(MetricClientDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP client requests, per attempt."),
		metric.WithExplicitBucketBoundaries(durationBounds[:]...))
	if err != nil {
		return nil, err
	}
	t.server, err = m.Float64Histogram(MetricServerDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."),
		metric.WithExplicitBucketBoundaries(durationBounds[:]...))
	if err != nil {
		return nil, err
	}
	t.retries, err = m.Int64Counter(MetricClientRetries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts that retry a call."))
	if err != nil {
		return nil, err
	}
	t.calls, err = m.Int64Counter(MetricClientCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Calls through the balancer's transport, across their attempts."))
	if err != nil {
		return nil, err
	}
	t.metrics = true
	t.traffic = newTraffic(o.now)
	return t, nil
}

// attrKey is one combination of attribute values: the key of a cached
// attribute set. Its fields are bounded by construction (services,
// versions, zones, rule conditions, methods, status codes, error types),
// but for the instance's address, which only WithInstanceMetrics adds.
type attrKey struct {
	kind                           uint8 // what the set is for: attempt, call or server
	service, version, region, zone string
	source                         pick.Source
	condition                      string
	retry                          bool
	method                         string
	status                         int
	errType                        string
	outcome                        string
	addr                           string
	port                           int
}

const (
	kindAttempt uint8 = iota
	kindCall
	kindServer
)

// attrSet is a cached attribute set as the instruments take it, so that a
// measurement allocates nothing for its attributes.
type attrSet struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

// maxSets bounds the cache: past it, sets are built per measurement.
const maxSets = 4096

// setCache maps attribute values to their set: copy-on-write, so a look-up
// is one atomic load and a map read.
type setCache struct {
	m  atomic.Pointer[map[attrKey]*attrSet]
	mu sync.Mutex
}

func (c *setCache) get(k *attrKey) *attrSet {
	if m := c.m.Load(); m != nil {
		if s := (*m)[*k]; s != nil {
			return s
		}
	}
	s := newAttrSet(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n int
	if old != nil {
		if s2 := (*old)[*k]; s2 != nil {
			return s2
		}
		n = len(*old)
	}
	if n >= maxSets {
		return s
	}
	m := make(map[attrKey]*attrSet, n+1)
	if old != nil {
		for k2, v := range *old {
			m[k2] = v
		}
	}
	m[*k] = s
	c.m.Store(&m)
	return s
}

func newAttrSet(k *attrKey) *attrSet {
	kv := make([]attribute.KeyValue, 0, 12)
	kv = append(kv, attribute.String(AttrService, k.service))
	if k.version != "" {
		kv = append(kv, attribute.String(AttrVersion, k.version))
	}
	if k.region != "" {
		kv = append(kv, attribute.String(AttrRegion, k.region))
	}
	if k.zone != "" {
		kv = append(kv, attribute.String(AttrZone, k.zone))
	}
	kv = append(kv, attribute.String(AttrRouteSource, string(k.source)))
	if k.condition != "" {
		kv = append(kv, attribute.String(AttrCondition, k.condition))
	}
	if k.kind == kindAttempt {
		kv = append(kv, attribute.Bool(AttrRetry, k.retry))
	}
	if k.kind == kindCall {
		kv = append(kv, attribute.String(AttrOutcome, k.outcome))
	}
	kv = append(kv, attribute.String("http.request.method", k.method))
	if k.status != 0 {
		kv = append(kv, attribute.Int("http.response.status_code", k.status))
	}
	if k.errType != "" {
		kv = append(kv, attribute.String("error.type", k.errType))
	}
	if k.addr != "" {
		kv = append(kv, attribute.String("server.address", k.addr), attribute.Int("server.port", k.port))
	}
	set := attribute.NewSet(kv...)
	return &attrSet{
		rec: []metric.RecordOption{metric.WithAttributeSet(set)},
		add: []metric.AddOption{metric.WithAttributeSet(set)},
	}
}

// methodOf returns the request method as http.request.method takes it:
// the known methods as they are, anything else "_OTHER".
func methodOf(m string) string {
	switch m {
	case "":
		return http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// instanceAttrs fills the picked instance's attributes of k.
func (t *telemetry) instanceAttrs(k *attrKey, in *discovery.Instance) {
	if in == nil {
		return
	}
	k.version, k.region, k.zone = in.Version, in.Region, in.Zone
	if t.instance {
		k.addr, k.port = in.Address, in.Port
	}
}

// seconds is d in seconds.
func seconds(d time.Duration) float64 { return d.Seconds() }

// WithMeterProvider records the balancer's metrics through mp: per attempt
// http.client.request.duration, per call graylane.client.calls, per retry
// graylane.client.retries, and in the middleware
// http.server.request.duration, labelled by version and route (see the
// package documentation's Observability section). It also feeds the debug
// view's per-version figures. Without it (or with nil) nothing is
// recorded and nothing is spent.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meterProvider = mp })
}

// WithTracerProvider records spans through tp: one for the route decided
// at an entry (which condition fired, which route) and one per attempt of
// the transport (instance, version, outcome), so that a retry shows as a
// second child span. Each attempt's span context is written to the
// outgoing request by the propagator (WithPropagator; by default
// OpenTelemetry's global one). Without it (or with nil) nothing is
// recorded.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tracerProvider = tp })
}

// WithPropagator sets the propagator that writes each attempt's span
// context onto the outgoing request when tracing (WithTracerProvider);
// nil, the default, means OpenTelemetry's global one
// (otel.GetTextMapPropagator) at the time of the call.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(o *options) { o.propagator = p })
}

// WithInstanceMetrics adds the picked instance's server.address and
// server.port to the client metrics. Off by default: it multiplies the
// series by the number of instances, which change with every deployment.
func WithInstanceMetrics(on bool) Option {
	return optionFunc(func(o *options) { o.instanceMetrics = on })
}
