package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/discovery"
)

// Defaults of RetryPolicy and of the transport.
const (
	DefaultRetryAttempts   = 3
	DefaultRetryMinBackoff = 10 * time.Millisecond
	DefaultRetryMaxBackoff = 250 * time.Millisecond
	// DefaultRetryMaxBody is the largest request body without GetBody that
	// is buffered so it can be sent again.
	DefaultRetryMaxBody = 1 << 20
	// DefaultConnectTimeout bounds the connection set-up of the transport
	// that (*Balancer).Transport builds when given a nil base (see
	// WithConnectTimeout): a vanished host costs this, not the 30 s of
	// http.DefaultTransport, before the request is retried elsewhere.
	DefaultConnectTimeout = time.Second
	// DefaultRetryMaxRetryAfter is the longest Retry-After that the
	// transport waits for before a retry.
	DefaultRetryMaxRetryAfter = 5 * time.Second
	// DefaultRetryBudgetBurst is RetryPolicy.BudgetBurst's default.
	DefaultRetryBudgetBurst = 10
)

// defaultRetryableStatus lists the answers retried by default: 502, 503
// and 504, which say that this instance could not serve the request, not
// that the request is wrong. withDefaults copies it.
var defaultRetryableStatus = [...]int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// RetryPolicy says when the transport sends a request again, by default to
// another instance. A request is retried only when it is safe: its method is
// idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or its context is
// marked with WithRetryable; and only after a connection error, a timeout
// or an answer in RetryableStatus (by default 502, 503 or 504). The zero
// value means the defaults.
//
// WithRetry sets the balancer's policy, WithServiceRetry one service's, and
// WithRequestRetry one request's.
type RetryPolicy struct {
	// Attempts is the most attempts per request, the first included; if 0,
	// DefaultRetryAttempts; 1 turns retries off.
	Attempts int
	// MinBackoff and MaxBackoff bound the pause before each retry: it grows
	// exponentially from MinBackoff and is drawn at random below its cap
	// ("full jitter"). If 0, DefaultRetryMinBackoff and
	// DefaultRetryMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxBody is the largest body, of a request without GetBody, that is
	// buffered for retries; larger or unknown-length bodies are sent once.
	// If 0, DefaultRetryMaxBody.
	MaxBody int64
	// Backoff, if set, computes the pause before retry number attempt (0
	// for the first retry) from MinBackoff, MaxBackoff and the last answer
	// (nil after a connection error). go-retryablehttp's backoff functions
	// fit: DefaultBackoff (exponential, honours Retry-After),
	// LinearJitterBackoff, RateLimitLinearJitterBackoff. If nil,
	// exponential backoff with full jitter, or the answer's Retry-After
	// (503 or 429) when it asks for longer.
	Backoff retryablehttp.Backoff
	// MaxRetryAfter is the longest Retry-After honoured: an answer asking
	// for a longer pause, or for one that would end after the caller's
	// deadline, is returned at once instead of retried. If 0,
	// DefaultRetryMaxRetryAfter.
	MaxRetryAfter time.Duration
	// RetryableStatus lists the status codes that count as the instance's
	// failure (for passive ejection) and are retried on another instance.
	// If nil, 502, 503 and 504; an empty non-nil slice retries
	// connection errors and timeouts only.
	RetryableStatus []int
	// AttemptTimeout, if > 0, bounds each attempt from the moment an
	// instance is picked until its response headers arrive: connecting,
	// sending the request and waiting for the answer. An instance that
	// takes longer (it accepts connections but never answers) is abandoned,
	// counted as failed, and the request retried on another instance while
	// the caller's context allows. The response body is then the caller's,
	// bounded by the request's context only. The caller's deadline always
	// bounds the whole call, retries included.
	AttemptTimeout time.Duration
	// SameInstance is how many retries go to the instance that just failed
	// before the next one goes to another instance, as Spring Cloud
	// LoadBalancer's maxRetriesOnSameServiceInstance (default 0: every
	// retry goes to another instance when there is one). Attempts still
	// bounds the total.
	SameInstance int
	// BudgetRatio, if > 0, bounds the retries to a service, through one
	// Transport, to this share of the requests to it, so that retries
	// cannot multiply an outage: each request adds BudgetRatio to the
	// service's budget, up to BudgetBurst, and each retry takes 1 from it;
	// without enough budget the last outcome is returned. With every
	// instance failing, retries add at most BudgetRatio times the requests,
	// plus BudgetBurst. 0: no budget.
	BudgetRatio float64
	// BudgetBurst is the most retries the budget holds (and what it starts
	// with); if 0, DefaultRetryBudgetBurst. Used only with BudgetRatio.
	BudgetBurst int
}

// backoff is the pause before retry number n after resp (nil after an
// error); false means that the answer asks for too long a pause.
func (p *RetryPolicy) backoff(n int, resp *http.Response) (time.Duration, bool) {
	if p.Backoff != nil {
		return p.Backoff(p.MinBackoff, p.MaxBackoff, n, resp), true
	}
	d := jitterBackoff(p.MinBackoff, p.MaxBackoff, n, resp)
	if resp != nil && len(resp.Header["Retry-After"]) != 0 {
		// With no range to grow in, go-retryablehttp's DefaultBackoff is the
		// answer's Retry-After (a 429 or 503 with seconds or a date), or 0.
		ra := retryablehttp.DefaultBackoff(0, 0, 0, resp)
		if ra > p.MaxRetryAfter {
			return 0, false
		}
		d = max(d, ra)
	}
	return d, true
}

// retryStatus reports whether an answer with code counts as a failure.
func (p *RetryPolicy) retryStatus(code int) bool {
	for _, c := range p.RetryableStatus {
		if c == code {
			return true
		}
	}
	return false
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts == 0 {
		p.Attempts = DefaultRetryAttempts
	}
	if p.MinBackoff == 0 {
		p.MinBackoff = DefaultRetryMinBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultRetryMaxBackoff
	}
	if p.MaxBody == 0 {
		p.MaxBody = DefaultRetryMaxBody
	}
	if p.BudgetBurst == 0 {
		p.BudgetBurst = DefaultRetryBudgetBurst
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = DefaultRetryMaxRetryAfter
	}
	if p.RetryableStatus == nil {
		p.RetryableStatus = defaultRetryableStatus[:]
	}
	// The caller's slice may change after the policy is given.
	p.RetryableStatus = slices.Clone(p.RetryableStatus)
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.Attempts < 1:
		return errors.New("balancer: retry attempts " + strconv.Itoa(p.Attempts) + " < 1")
	case p.MinBackoff < 0 || p.MaxBackoff < p.MinBackoff:
		return errors.New("balancer: retry backoff must satisfy 0 <= min <= max")
	case p.MaxBody < 0:
		return errors.New("balancer: retry max body < 0")
	case p.AttemptTimeout < 0:
		return errors.New("balancer: retry attempt timeout < 0")
	case p.SameInstance < 0:
		return errors.New("balancer: retry same-instance count < 0")
	case p.MaxRetryAfter < 0:
		return errors.New("balancer: retry max Retry-After < 0")
	case !(p.BudgetRatio >= 0 && p.BudgetRatio <= 1000) || p.BudgetBurst < 0:
		return errors.New("balancer: retry budget must satisfy 0 <= ratio <= 1000 and burst >= 0")
	}
	for _, c := range p.RetryableStatus {
		if c < 100 || c > 599 {
			return errors.New("balancer: retryable status " + strconv.Itoa(c) + " is not an HTTP status")
		}
	}
	return nil
}

// gatewayStatus is the outcome reported to a pick's done function when an
// instance answered a retryable status: a failure for passive ejection. It is
// not returned to callers, who get the response itself (balancer/rest turns
// non-2xx responses into its StatusError).
type gatewayStatus struct {
	code int
}

func (e *gatewayStatus) Error() string { return "status " + strconv.Itoa(e.code) }

// statusError is the outcome for an answer with a retryable status.
func statusError(code int) error {
	if e := statusErrors[code]; e != nil {
		return e
	}
	return &gatewayStatus{code}
}

var statusErrors = map[int]*gatewayStatus{
	http.StatusBadGateway:         {http.StatusBadGateway},
	http.StatusServiceUnavailable: {http.StatusServiceUnavailable},
	http.StatusGatewayTimeout:     {http.StatusGatewayTimeout},
}

// Transport is the http.RoundTripper returned by (*Balancer).Transport.
type Transport struct {
	b      *Balancer
	base   http.RoundTripper
	policy RetryPolicy
	// services holds the policies set by WithServiceRetry.
	services map[string]*RetryPolicy
	// budgets holds the retry budget of each service (*retryBudget), for
	// policies with one.
	budgets sync.Map
}

// retryBudget is a service's retry budget, in thousandths of a retry.
type retryBudget struct{ milli atomic.Int64 }

// deposit adds a request's share, up to the burst. A full budget (the
// healthy state) costs one atomic load.
func (b *retryBudget) deposit(p *RetryPolicy) {
	add, limit := int64(p.BudgetRatio*1000), int64(p.BudgetBurst)*1000
	for {
		v := b.milli.Load()
		if v >= limit {
			return
		}
		if b.milli.CompareAndSwap(v, min(v+add, limit)) {
			return
		}
	}
}

// withdraw takes one retry from the budget, reporting whether it had one.
func (b *retryBudget) withdraw() bool {
	for {
		v := b.milli.Load()
		if v < 1000 {
			return false
		}
		if b.milli.CompareAndSwap(v, v-1000) {
			return true
		}
	}
}

// budget returns service's retry budget, or nil if p has none.
func (t *Transport) budget(service string, p *RetryPolicy) *retryBudget {
	if p.BudgetRatio <= 0 {
		return nil
	}
	if v, ok := t.budgets.Load(service); ok {
		return v.(*retryBudget)
	}
	nb := new(retryBudget)
	nb.milli.Store(int64(p.BudgetBurst) * 1000)
	v, _ := t.budgets.LoadOrStore(service, nb)
	return v.(*retryBudget)
}

var _ http.RoundTripper = (*Transport)(nil)

// Transport returns a RoundTripper that sends requests for
// http://service-name/... to an instance of service-name chosen by Pick,
// with the route of the request's context (or its n-d-* headers, or the
// balancer's rule) and the forwarded headers set on the outgoing request.
// The caller's request is never modified. URLs whose host carries a port
// or is an IP address pass through to base untouched.
//
// Safe requests are retried on another instance (see RetryPolicy), every
// attempt going through base. Each attempt's outcome is reported to the
// pick's done function when its response headers arrive: a connection
// error, a timeout or a status in the policy's RetryableStatus (by default
// 502, 503 and 504) counts as a failure. Each attempt also passes the
// circuit breaker of the version set it was picked from (see
// BreakerPolicy), which fails it fast while that set is failing.
//
// A nil base means a clone of http.DefaultTransport with more idle
// connections per host, as instances are few and busy, and a connect
// timeout of DefaultConnectTimeout (see WithConnectTimeout).
func (b *Balancer) Transport(base http.RoundTripper) *Transport {
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		d := &net.Dialer{Timeout: b.o.connectTimeout, KeepAlive: 30 * time.Second}
		t.DialContext = d.DialContext
		t.MaxIdleConnsPerHost = 64
		t.MaxIdleConns = 512
		base = t
	}
	t := &Transport{b: b, base: base, policy: b.o.retry}
	if len(b.o.serviceRetry) != 0 {
		t.services = make(map[string]*RetryPolicy, len(b.o.serviceRetry))
		for name, p := range b.o.serviceRetry {
			t.services[name] = &p
		}
	}
	return t
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method (an *http.Transport does). http.Client's
// CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Client returns an http.Client using b.Transport(nil).
func (b *Balancer) Client() *http.Client {
	return &http.Client{Transport: b.Transport(nil)}
}

// call is one request through the transport, across its attempts.
type call struct {
	t       *Transport
	p       *RetryPolicy
	service string
	route   *Route
	avoid   string // ID of the instance that failed the last attempt
	body    func() (io.ReadCloser, error)
	n       int // attempts made
	// The last instance picked, and how many retries it may still get.
	last        *Selector
	lastI       int
	lastBreaker *circuit.Breaker
	same        int
	// picked is the instance of the last attempt, nil when its pick failed.
	picked *discovery.Instance
}

// RoundTrip implements http.RoundTripper. The response's Request is the
// caller's request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, errors.New("balancer: request without URL")
	}
	if !isServiceHost(req.URL.Host) {
		return t.base.RoundTrip(req)
	}
	resp, err := t.roundTrip(req)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// roundTrip sends req to instances of its service until one answers or
// the retry policy says to stop.
//
// The retries are one loop of ours, not go-retryablehttp's Client.Do: a
// transport must send every attempt through the same base RoundTripper,
// and the library's loop sends its attempts through an http.Client, which
// refuses requests forwarded by a server (RequestURI set), follows
// redirects, and would need the call's state smuggled to it through the
// request's context. The library does the parts that fit a RoundTripper:
// the Backoff functions (RetryPolicy.Backoff accepts any of them), the
// CheckRetry shape of the retry decision (checkRetry) and the rewinding
// of a buffered request body (Request.SetBody). The first attempt of a
// request costs nothing more than a plain RoundTrip.
func (t *Transport) roundTrip(req *http.Request) (resp *http.Response, err error) {
	p, err := t.policyFor(req)
	if err != nil {
		return nil, err
	}
	c := call{t: t, p: p, service: req.URL.Host, route: t.route(req)}
	if t.b.tel != nil {
		defer func() { t.b.tel.endCall(&c, req, resp, err) }()
	}
	out := new(http.Request)
	*out = *req
	out.Header = make(http.Header, len(req.Header)+4+t.b.identityRoom())
	for k, vs := range req.Header {
		out.Header[k] = vs
	}
	SetRouteHeader(out.Header, c.route)
	t.b.InjectIdentity(headerCarrier(out.Header))
	out.Host = ""
	if t.b.o.baggage {
		out = withRouteBaggage(out, c.route)
	}

	budget := t.budget(c.service, p)
	if budget != nil {
		budget.deposit(p)
	}
	if !p.retryable(req) {
		return c.attempt(out)
	}
	if err := c.rewindable(out); err != nil {
		return nil, err
	}
	ctx := req.Context()
	for n := 0; ; n++ {
		resp, err := c.attempt(out)
		if n+1 >= p.Attempts {
			return resp, err
		}
		if again, _ := p.checkRetry(ctx, resp, err); !again {
			return resp, err
		}
		if budget != nil && !budget.withdraw() {
			return resp, err
		}
		wait, ok := p.backoff(n, resp)
		if !ok {
			return resp, err
		}
		if deadline, ok := ctx.Deadline(); ok && !t.b.o.now().Add(wait).Before(deadline) {
			// The pause would outlive the caller: keep the last outcome.
			return resp, err
		}
		if resp != nil {
			drain(resp.Body)
		}
		if !t.b.o.sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// rewindable makes sure that every attempt of out can send its body: a
// body without GetBody is buffered (retryable made sure that it is small)
// and rewound for each attempt by go-retryablehttp's Request.
func (c *call) rewindable(out *http.Request) error {
	if out.Body == nil || out.Body == http.NoBody {
		return nil
	}
	if out.GetBody != nil {
		c.body = out.GetBody
		return nil
	}
	body, want := out.Body, out.ContentLength
	defer body.Close()
	rr := retryablehttp.Request{Request: out}
	if err := rr.SetBody(io.LimitReader(body, want+1)); err != nil {
		return err
	}
	if out.ContentLength != want {
		return fmt.Errorf("balancer: request body is not %d bytes long as its ContentLength says", want)
	}
	c.body = out.GetBody
	var err error
	out.Body, err = c.body()
	return err
}

// drain reads a little of a body that will not be used, so that its
// connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// route returns the route to apply to req: its context's, else one read
// from its own n-d-* headers, else the rule's decision for its values, else
// none.
func (t *Transport) route(req *http.Request) *Route {
	if r := routeFrom(req.Context()); r != nil {
		return r
	}
	if hasRouteHeader(req.Header) {
		r, _, err := RouteFromHeader(req.Header)
		if err != nil {
			t.b.log.Warn("outbound routing header ignored", zap.Error(err))
		}
		r.Origin.Source = SourceHeader
		return &r
	}
	t.b.noteUnrouted(req.URL.Host)
	if ar := t.b.currentRule(req.Context()); ar != nil {
		r := t.b.decide(ar, RequestValues(req), nil)
		t.b.tel.decided(req.Context(), &r)
		return &r
	}
	return &Route{}
}

// policyFor returns the retry policy of req: its context's
// (WithRequestRetry), else its service's (WithServiceRetry), else the
// balancer's.
func (t *Transport) policyFor(req *http.Request) (*RetryPolicy, error) {
	if p, ok := req.Context().Value(retryPolicyKey{}).(*RetryPolicy); ok {
		if err := p.validate(); err != nil {
			return nil, err
		}
		return p, nil
	}
	if t.services != nil {
		if p := t.services[req.URL.Host]; p != nil {
			return p, nil
		}
	}
	return &t.policy, nil
}

type retryPolicyKey struct{}

// WithRequestRetry returns a copy of ctx under which requests through a
// balancer's transport follow p (zero fields mean the defaults) instead of
// the service's or the balancer's retry policy. An invalid p fails those
// requests with the reason.
func WithRequestRetry(ctx context.Context, p RetryPolicy) context.Context {
	p = p.withDefaults()
	return context.WithValue(ctx, retryPolicyKey{}, &p)
}

// retryable reports whether req may be sent more than once.
func (p *RetryPolicy) retryable(req *http.Request) bool {
	if p.Attempts <= 1 {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		if !retryableFrom(req.Context()) {
			return false
		}
	}
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return true
	}
	return req.ContentLength > 0 && req.ContentLength <= p.MaxBody
}

// attempt picks an instance, points req at it and sends it.
func (c *call) attempt(req *http.Request) (*http.Response, error) {
	if c.n > 0 && c.body != nil {
		body, err := c.body()
		if err != nil {
			return nil, err
		}
		req.Body = body
	}
	c.n++
	b := c.t.b
	obs := b.tel.beginAttempt(c, req)
	var sel *Selector
	var i int
	var tk circuit.Ticket
	if c.avoid != "" && c.same > 0 {
		// A retry on the instance that just failed.
		c.same--
		sel, i = c.last, c.lastI
		var err error
		if tk, err = c.lastBreaker.Admit(); err != nil {
			closeBody(req)
			obs.end(c, req, nil, err)
			return nil, err
		}
	} else {
		var br *circuit.Breaker
		var err error
		sel, i, br, tk, err = c.pickAdmitted(req)
		if err != nil {
			closeBody(req)
			c.picked = nil
			obs.end(c, req, nil, err)
			return nil, err
		}
		c.last, c.lastI, c.lastBreaker, c.same = sel, i, br, c.p.SameInstance
	}
	in := sel.Instance(i)
	done := sel.Start(i)
	u := new(url.URL)
	*u = *req.URL
	u.Host = in.HostPort()
	req.URL = u
	c.picked = in
	resp, err := c.roundTripAttempt(obs.request(req, in))
	tk.Done(c.breakerOutcome(req, resp, err))
	obs.end(c, req, resp, err)
	switch {
	case err != nil:
		done(err)
		c.avoid = in.ID
		if b.log.Core().Enabled(zap.DebugLevel) {
			b.log.Debug("attempt failed", zap.String("service", c.service), zap.String("instance", in.ID),
				zap.Int("attempt", c.n), zap.Error(err))
		}
	case c.p.retryStatus(resp.StatusCode):
		done(statusError(resp.StatusCode))
		c.avoid = in.ID
	default:
		done(nil)
	}
	return resp, err
}

// roundTripAttempt sends one attempt through the base transport, within
// the policy's AttemptTimeout if it has one.
func (c *call) roundTripAttempt(req *http.Request) (*http.Response, error) {
	if c.p.AttemptTimeout > 0 {
		return c.timedRoundTrip(req)
	}
	return c.t.base.RoundTrip(req)
}

// closeBody closes the body of a request that will not be sent.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// timedRoundTrip sends req through the base transport, giving up when its
// response headers have not arrived within the policy's AttemptTimeout.
// Once they have, the attempt's context lives until the body is closed.
func (c *call) timedRoundTrip(req *http.Request) (*http.Response, error) {
	d := c.p.AttemptTimeout
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(d, cancel)
	resp, err := c.t.base.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// Timed out, perhaps just as the answer came: its body would be
		// cut short.
		cancel()
		if resp != nil {
			_ = resp.Body.Close()
		}
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, &attemptTimeoutError{d: d}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A protocol switch (101): keep the body writable.
		resp.Body = &cancelReadWriteBody{rwc, cancel}
	} else {
		resp.Body = &cancelBody{resp.Body, cancel}
	}
	return resp, nil
}

// attemptTimeoutError is an attempt's error when it ran out of the
// policy's AttemptTimeout.
type attemptTimeoutError struct{ d time.Duration }

func (e *attemptTimeoutError) Error() string {
	return "balancer: no response within the attempt timeout of " + e.d.String()
}

// Timeout reports true, as net.Error's Timeout.
func (e *attemptTimeoutError) Timeout() bool { return true }

// Is makes the error match context.DeadlineExceeded, as net/http's own
// timeouts do.
func (e *attemptTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// cancelBody ends an attempt's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type cancelReadWriteBody struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

func (b *cancelReadWriteBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel()
	return err
}

// checkRetry decides whether an attempt's outcome calls for another
// attempt; it has the shape of go-retryablehttp's CheckRetry. ctx is the
// caller's: whether it is done decides, not the error's type, so that an
// attempt that timed out on its own (a dial timeout, a transport's
// ResponseHeaderTimeout, the policy's AttemptTimeout) is retried on another
// instance while the caller still waits.
func (p *RetryPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, ErrNoInstance) || errors.Is(err, ErrClosed) || errors.Is(err, ErrBreakerOpen) {
			return false, err
		}
		return true, nil // connection refused or reset, timeouts, EOF before the answer...
	}
	return p.retryStatus(resp.StatusCode), nil
}

var _ retryablehttp.CheckRetry = (*RetryPolicy)(nil).checkRetry

// jitterBackoff is exponential backoff with full jitter: a random pause
// below min*2^attempt, capped at max, and never below min/2.
func jitterBackoff(minWait, maxWait time.Duration, attempt int, _ *http.Response) time.Duration {
	ceiling := maxWait
	if attempt < 30 {
		if c := minWait << attempt; c > 0 && c < maxWait {
			ceiling = c
		}
	}
	floor := minWait / 2
	if ceiling <= floor {
		return floor
	}
	return floor + rand.N(ceiling-floor)
}

// isServiceHost reports whether a URL host names a service: no port and not
// an IP address.
func isServiceHost(host string) bool {
	if host == "" {
		return false
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return false
	}
	if host[0] == '[' || net.ParseIP(host) != nil {
		return false
	}
	return true
}
