package balancer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"
)

// Defaults of RetryPolicy.
const (
	DefaultRetryAttempts   = 3
	DefaultRetryMinBackoff = 10 * time.Millisecond
	DefaultRetryMaxBackoff = 250 * time.Millisecond
	// DefaultRetryMaxBody is the largest request body without GetBody that
	// is buffered so it can be sent again.
	DefaultRetryMaxBody = 1 << 20
)

// RetryPolicy says when the transport sends a request again to another
// instance. A request is retried only when it is safe: its method is
// idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or its context is
// marked with WithRetryable; and only after a connection error or a 502,
// 503 or 504 answer. The zero value means the defaults.
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
	}
	return nil
}

// gatewayStatus is the outcome reported to a pick's done function when an
// instance answered 502, 503 or 504: a failure for passive ejection. It is
// not returned to callers, who get the response itself (balancer/rest turns
// non-2xx responses into its StatusError).
type gatewayStatus struct {
	code int
}

func (e *gatewayStatus) Error() string { return "status " + strconv.Itoa(e.code) }

var statusErrors = map[int]*gatewayStatus{
	http.StatusBadGateway:         {http.StatusBadGateway},
	http.StatusServiceUnavailable: {http.StatusServiceUnavailable},
	http.StatusGatewayTimeout:     {http.StatusGatewayTimeout},
}

// Transport is the http.RoundTripper returned by (*Balancer).Transport.
type Transport struct {
	b      *Balancer
	base   http.RoundTripper
	retry  *retryablehttp.Client
	policy RetryPolicy
}

var _ http.RoundTripper = (*Transport)(nil)

// Transport returns a RoundTripper that sends requests for
// http://service-name/... to an instance of service-name chosen by Pick,
// with the route of the request's context (or its n-d-* headers, or the
// balancer's rule) and the forwarded headers set on the outgoing request.
// The caller's request is never modified. URLs whose host carries a port
// or is an IP address pass through to base untouched.
//
// Safe requests are retried on another instance (see RetryPolicy) through
// go-retryablehttp. Each attempt's outcome is reported to the pick's done
// function when its response headers arrive: a connection error or a 502,
// 503 or 504 counts as a failure.
//
// A nil base means a clone of http.DefaultTransport with more idle
// connections per host, as instances are few and busy.
func (b *Balancer) Transport(base http.RoundTripper) *Transport {
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.MaxIdleConns = 512
		base = t
	}
	t := &Transport{b: b, base: base, policy: b.o.retry}
	t.retry = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: attemptTransport{t},
			// Redirects are the caller's client's business.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		RetryWaitMin: t.policy.MinBackoff,
		RetryWaitMax: t.policy.MaxBackoff,
		// The first attempt is made before the loop is entered.
		RetryMax:   t.policy.Attempts - 2,
		CheckRetry: checkRetry,
		Backoff: func(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
			return jitterBackoff(minWait, maxWait, attempt+1, resp)
		},
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return t
}

// Client returns an http.Client using b.Transport(nil).
func (b *Balancer) Client() *http.Client {
	return &http.Client{Transport: b.Transport(nil)}
}

// call is one request through the transport, across its attempts.
type call struct {
	t       *Transport
	service string
	route   *Route
	avoid   string // ID of the instance that failed the last attempt
	body    func() (io.ReadCloser, error)
	n       int // attempts made
}

type callKey struct{}

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

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	c := &call{t: t, service: req.URL.Host, route: t.route(req)}
	out := new(http.Request)
	*out = *req
	out.Header = make(http.Header, len(req.Header)+4)
	for k, vs := range req.Header {
		out.Header[k] = vs
	}
	SetRouteHeader(out.Header, c.route)
	out.Host = ""

	if !t.retryable(req) {
		return c.attempt(out)
	}
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody != nil {
			c.body = req.GetBody
		} else {
			// Buffer the body so that every attempt can send it; retryable
			// made sure that it is small.
			buf, err := io.ReadAll(io.LimitReader(req.Body, t.policy.MaxBody+1))
			req.Body.Close()
			if err != nil {
				return nil, err
			}
			c.body = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
			out.Body, _ = c.body()
			out.GetBody = c.body
		}
	}
	// The first attempt goes straight to the base transport: most requests
	// succeed at once and pay nothing for the retry machinery.
	resp, err := c.attempt(out)
	if again, _ := checkRetry(req.Context(), resp, err); !again {
		return resp, err
	}
	if resp != nil {
		drain(resp.Body)
	}
	// The rest of the attempts run in go-retryablehttp's loop, each one
	// picking again (another instance than the one that just failed).
	if !sleepContext(req.Context(), jitterBackoff(t.policy.MinBackoff, t.policy.MaxBackoff, 0, nil)) {
		return nil, req.Context().Err()
	}
	ctx := context.WithValue(req.Context(), callKey{}, c)
	resp, err = t.retry.Do(&retryablehttp.Request{Request: out.WithContext(ctx)})
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return resp, err
}

// drain reads a little of a body that will not be used, so that its
// connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// sleepContext waits d or until ctx ends, reporting whether it waited d.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
		return &r
	}
	if ar := t.b.currentRule(req.Context()); ar != nil {
		r := t.b.decide(ar, RequestValues(req), nil)
		return &r
	}
	return &Route{}
}

// retryable reports whether req may be sent more than once.
func (t *Transport) retryable(req *http.Request) bool {
	if t.policy.Attempts <= 1 {
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
	return req.ContentLength > 0 && req.ContentLength <= t.policy.MaxBody
}

// attemptTransport is the retry client's transport: one attempt of the
// call carried by the request's context.
type attemptTransport struct{ t *Transport }

func (a attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(callKey{}).(*call)
	if c == nil {
		return nil, errors.New("balancer: retry attempt without call")
	}
	return c.attempt(req)
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
	sel, i, err := b.pickRoute(req.Context(), c.service, c.route, c.avoid)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	in := sel.Instance(i)
	done := sel.Start(i)
	u := new(url.URL)
	*u = *req.URL
	u.Host = in.HostPort()
	req.URL = u
	resp, err := c.t.base.RoundTrip(req)
	switch {
	case err != nil:
		done(err)
		c.avoid = in.ID
		if b.log.Core().Enabled(zap.DebugLevel) {
			b.log.Debug("attempt failed", zap.String("service", c.service), zap.String("instance", in.ID),
				zap.Int("attempt", c.n), zap.Error(err))
		}
	case statusErrors[resp.StatusCode] != nil:
		done(statusErrors[resp.StatusCode])
		c.avoid = in.ID
	default:
		done(nil)
	}
	return resp, err
}

// checkRetry decides for go-retryablehttp whether an attempt's outcome
// calls for another attempt.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, ErrNoInstance) || errors.Is(err, ErrClosed) ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, err
		}
		return true, nil // connection refused, reset, EOF before the answer...
	}
	return statusErrors[resp.StatusCode] != nil, nil
}

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
