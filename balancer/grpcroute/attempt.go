package grpcroute

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/stats"
)

// This file records the attempts of client calls. gRPC may make several
// attempts inside one call: transparent retries (a stream refused before
// the server saw it) and the retries of a retryPolicy in the service
// config. grpc-go tells a stats handler (grpc.WithStatsHandler) of every
// attempt, with the attempt's own context, which is the one the picker
// sees: so an attempt's observer, put in that context by TagRPC, learns
// the instance picked for it, and the call's observer, the attempt's
// parent, learns the last one. Nothing is added to the picker or to calls
// made without the handler.

// StatsHandler returns the client stats handler that records each attempt
// of a call, installed with grpc.WithStatsHandler (DialOptions includes
// it): with WithTracerProvider a span per attempt ("Attempt.<method>"),
// child of the call's span, with the instance picked for it and its
// outcome, whose context goes out in the attempt's metadata; with
// WithMeterProvider grpc.client.attempt.duration, in seconds, with the
// attributes of rpc.client.call.duration and graylane.retry for an
// attempt after the first. Without either provider it records nothing.
// It serves client connections only.
func (i *Interceptors) StatsHandler() stats.Handler { return attemptHandler{i.tel} }

// attemptHandler is the stats handler of StatsHandler.
type attemptHandler struct{ t *rpcTelemetry } // t nil: records nothing

// TagRPC starts an attempt: its observer, its number within the call and,
// traced, its span.
func (h attemptHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if h.t == nil {
		return ctx
	}
	a := &callObs{method: info.FullMethodName, n: 1}
	if call, ok := ctx.Value(callObsKey{}).(*callObs); ok && call.call == nil {
		a.call, a.target = call, call.target
		a.n = call.attempts.Add(1)
		// The call is its last attempt's: none until this one picks.
		call.in.Store(nil)
	}
	if h.t.tracer != nil {
		ctx, a.span = attemptSpan(ctx, h.t.tracer, h.t.prop, info.FullMethodName, a.n)
	}
	return context.WithValue(ctx, callObsKey{}, a)
}

// HandleRPC ends an attempt (stats.End): its span and its duration, from
// stats.End's own times. Payload and header events are passed over.
func (h attemptHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h.t == nil || !s.IsClient() {
		return
	}
	switch s := s.(type) {
	case *stats.Begin:
		if a := attemptOf(ctx); a != nil && a.span != nil {
			a.span.SetAttributes(attribute.Bool("transparent-retry", s.IsTransparentRetryAttempt))
		}
	case *stats.End:
		a := attemptOf(ctx)
		if a == nil {
			return
		}
		in := a.in.Load()
		if a.span != nil {
			endCallSpan(a.span, in, s.Error)
		}
		if h.t.attempt != nil {
			h.t.attempt.Record(ctx, s.EndTime.Sub(s.BeginTime).Seconds(),
				metric.WithAttributeSet(clientAttrs(ctx, a.target, a.method, in, s.Error, a.n > 1)))
		}
	}
}

// attemptOf returns the observer TagRPC put in an attempt's context, nil
// if none.
func attemptOf(ctx context.Context) *callObs {
	if a, ok := ctx.Value(callObsKey{}).(*callObs); ok && a.n > 0 {
		return a
	}
	return nil
}

// TagConn leaves ctx as it is.
func (attemptHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn records nothing.
func (attemptHandler) HandleConn(context.Context, stats.ConnStats) {}
