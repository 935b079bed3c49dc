package balancer

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/discovery"
)

// This file records the client and server metrics (names and attributes
// in telemetry.go) and feeds the debug view's traffic rings. The transport
// and the middleware call it at a few points; with no telemetry configured
// every call is one nil check.

// attemptObs is one attempt of the transport under observation.
type attemptObs struct {
	t     *telemetry
	start time.Time
	span  trace.Span // nil without a tracer
	in    *discovery.Instance
}

// beginAttempt starts observing attempt number c.n of c (1 for the
// first), before its pick.
func (t *telemetry) beginAttempt(c *call, req *http.Request) attemptObs {
	if t == nil {
		return attemptObs{}
	}
	o := attemptObs{t: t, start: t.now()}
	if t.tracer != nil {
		o.span = t.attemptSpan(req.Context(), c, req)
	}
	return o
}

// request returns req as it is to be sent for the attempt, to instance in:
// with the attempt's span in its context and on its headers when tracing.
func (o *attemptObs) request(req *http.Request, in *discovery.Instance) *http.Request {
	o.in = in
	if o.span == nil {
		return req
	}
	spanInstance(o.span, in)
	ctx := trace.ContextWithSpan(req.Context(), o.span)
	o.t.prop().Inject(ctx, headerPropagation(req.Header))
	return req.WithContext(ctx)
}

// end records the attempt's outcome: resp, or err (a pick's error when no
// instance was picked).
func (o *attemptObs) end(c *call, req *http.Request, resp *http.Response, err error) {
	t := o.t
	if t == nil {
		return
	}
	status := 0
	if err == nil && resp != nil {
		status = resp.StatusCode
	}
	et := errorType(status, err)
	if o.span != nil {
		endSpan(o.span, status, et, err)
	}
	if !t.metrics {
		return
	}
	d := t.now().Sub(o.start)
	k := attrKey{
		kind: kindAttempt, service: c.service,
		source: c.route.Origin.SourceOrNone(), condition: c.route.Origin.Condition,
		retry: c.n > 1, method: methodOf(req.Method), status: status, errType: et,
	}
	t.instanceAttrs(&k, o.in)
	s := t.sets.get(&k)
	ctx := req.Context()
	t.client.Record(ctx, seconds(d), s.rec...)
	if k.retry {
		t.retries.Add(ctx, 1, s.add...)
	}
	t.traffic.add(false, c.service, k.version, d, et != "")
}

// endCall records a call's outcome across its attempts: the last one's.
func (t *telemetry) endCall(c *call, req *http.Request, resp *http.Response, err error) {
	if t == nil || !t.metrics {
		return
	}
	status := 0
	if err == nil && resp != nil {
		status = resp.StatusCode
	}
	et := errorType(status, err)
	k := attrKey{
		kind: kindCall, service: c.service,
		source: c.route.Origin.SourceOrNone(), condition: c.route.Origin.Condition,
		method: methodOf(req.Method), status: status, errType: et, outcome: "success",
	}
	if et != "" {
		k.outcome = "failure"
	}
	t.instanceAttrs(&k, c.picked)
	t.calls.Add(req.Context(), 1, t.sets.get(&k).add...)
}

// serve runs next for r, recording the server's figures under the
// balancer's own identity: r's context carries the route Inbound found.
func (b *Balancer) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	t := b.tel
	start := t.now()
	sw := &statusWriter{ResponseWriter: w}
	panicked := true
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		et := errorType(status, nil)
		if panicked {
			et, status = ErrorTypePanic, 0
		}
		b.recordServer(r, status, et, t.now().Sub(start))
	}()
	next.ServeHTTP(sw, r)
	panicked = false
}

// recordServer records one request served, answered with status (0: none)
// and error.type et, after d.
func (b *Balancer) recordServer(r *http.Request, status int, et string, d time.Duration) {
	t := b.tel
	k := attrKey{
		kind: kindServer, service: b.o.self.Service, version: b.o.self.Version,
		source: SourceNone, method: methodOf(r.Method), status: status, errType: et,
	}
	if rt := routeFrom(r.Context()); rt != nil {
		k.source, k.condition = rt.Origin.SourceOrNone(), rt.Origin.Condition
	}
	t.server.Record(r.Context(), seconds(d), t.sets.get(&k).rec...)
	t.traffic.add(true, k.service, k.version, d, et != "")
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer's other abilities.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes on to the writer, for handlers that assert http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack passes on to the writer, for handlers that assert http.Hijacker.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.ErrUnsupported
}

// endSpan sets an attempt span's outcome and ends it.
func endSpan(s trace.Span, status int, et string, err error) {
	if status != 0 {
		s.SetAttributes(attrStatus.Int(status))
	}
	if et != "" {
		s.SetAttributes(attrErrorType.String(et))
		msg := et
		if err != nil {
			msg = err.Error()
		}
		s.SetStatus(codes.Error, msg)
	}
	s.End()
}
