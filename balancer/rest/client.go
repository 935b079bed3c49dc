package rest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a [Client].
const (
	// DefaultMaxResponseBytes is the largest response body a Client reads
	// unless [WithMaxResponseBytes] says otherwise.
	DefaultMaxResponseBytes = 10 << 20
	// MaxErrorBody is how much of a non-2xx response body a [StatusError]
	// keeps.
	MaxErrorBody = 64 << 10
	// maxDrain bounds how much of an unread body is drained before closing
	// so the connection can be reused; past it the connection is dropped
	// rather than reading an endless stream.
	maxDrain = 256 << 10
)

// Client is a typed HTTP client bound to one service. Build it once with
// [New] and share it: it is immutable and safe for concurrent use. Calls go
// through the package-level functions [Get], [Post], [Put], [Patch],
// [Delete] and [Do].
type Client struct {
	service string
	base    *url.URL // scheme, host and path prefix (without trailing '/')
	hc      *http.Client
	header  http.Header
	maxBody int64
	timeout time.Duration
	err     error // a bad service name or base URL, returned by every call
	// codecs encode requests (the first) and decode responses (the one
	// that handles the answer's Content-Type; else the first).
	codecs       []Codec
	interceptors []Interceptor
	errorDecoder ErrorDecoder
	acceptHeader string
	basePath     string
	ctx          []func(context.Context) context.Context // applied to every call's context
}

// Option configures a [Client].
type Option interface{ apply(*Client) }

type optionFunc func(*Client)

func (f optionFunc) apply(c *Client) { f(c) }

// WithBaseURL sends the Client's requests to base instead of
// http://<service>: another scheme or host, and a path prefix that every
// call's path is appended to ("https://api.example.com/v2"). A base that is
// not an absolute http or https URL makes every call fail with an error that
// says so.
func WithBaseURL(base string) Option {
	return optionFunc(func(c *Client) {
		u, err := parseBase(base)
		if err != nil {
			c.err = err
			return
		}
		c.base = u
	})
}

// WithHeader sets a header on every request of the Client (an API key, a
// fixed Accept). Per-call [Header] options replace it.
func WithHeader(name, value string) Option {
	return optionFunc(func(c *Client) { c.header.Set(name, value) })
}

// WithMaxResponseBytes limits the response body read for a 2xx answer; a
// larger body fails with [ErrResponseTooLarge]. If n <= 0,
// [DefaultMaxResponseBytes].
func WithMaxResponseBytes(n int64) Option {
	return optionFunc(func(c *Client) {
		if n <= 0 {
			n = DefaultMaxResponseBytes
		}
		c.maxBody = n
	})
}

// WithTimeout bounds each call that arrives with a context without a
// deadline; a context's own deadline always applies. If d <= 0, no bound
// beyond the context (the default).
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *Client) { c.timeout = max(d, 0) })
}

// WithBasePath appends path to the Client's base URL (http://<service>,
// or [WithBaseURL]'s): with "/api/v2", a call to "/users" goes to
// http://<service>/api/v2/users. A path with a scheme, host, query or
// fragment is an error of the Client.
func WithBasePath(path string) Option {
	return optionFunc(func(c *Client) { c.basePath = path })
}

// applyBasePath appends the base path to the base URL.
func (c *Client) applyBasePath() error {
	if c.base == nil || c.basePath == "" {
		return nil
	}
	ref, err := url.Parse(c.basePath)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.RawQuery != "" || ref.Fragment != "" {
		return errors.New("base path " + strconv.Quote(c.basePath) + " is not a plain path")
	}
	u := *c.base
	u.RawPath = strings.TrimSuffix(u.EscapedPath()+"/"+strings.Trim(ref.EscapedPath(), "/"), "/")
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return errors.New("base path " + strconv.Quote(c.basePath) + ": " + err.Error())
	}
	c.base = &u
	return nil
}

// WithCodecs sets the Client's codecs: the first encodes request bodies
// (unless a call says otherwise with [Encoding]); all are offered in
// Accept, in order of preference, and a response is decoded by the first
// that handles its Content-Type, or by the first codec when none does (a
// missing or generic type). The default is [JSON] alone. Nil codecs are
// an error of the Client.
func WithCodecs(codecs ...Codec) Option {
	return optionFunc(func(c *Client) {
		if len(codecs) == 0 {
			c.err = errors.New("WithCodecs without a codec")
			return
		}
		for _, cd := range codecs {
			if cd == nil {
				c.err = errors.New("WithCodecs with a nil codec")
				return
			}
		}
		c.codecs = append([]Codec(nil), codecs...)
	})
}

// Interceptor changes a request just before it is sent: an auth header, a
// signature, a correlation id. Interceptors run in the order given, once
// per call (not per retry: a transport resends the same request), after
// the Client's and the call's headers and body are set. A body that can
// be sent again (a codec's, []byte, a *bytes.Reader...) is readable through
// req.GetBody without disturbing it. An error fails the call unsent.
type Interceptor func(req *http.Request) error

// WithInterceptors adds interceptors to the Client's requests.
func WithInterceptors(ics ...Interceptor) Option {
	return optionFunc(func(c *Client) {
		for _, ic := range ics {
			if ic != nil {
				c.interceptors = append(c.interceptors, ic)
			}
		}
	})
}

// ErrorDecoder turns an answer outside 2xx into the caller's own error, as
// OpenFeign's ErrorDecoder does: it reads the [*StatusError] (status,
// headers, the start of the body; [StatusError.Decode] parses it as JSON)
// and returns the error the call returns. Returning nil keeps the
// *StatusError.
type ErrorDecoder func(*StatusError) error

// WithErrorDecoder sets the Client's error decoder.
func WithErrorDecoder(d ErrorDecoder) Option {
	return optionFunc(func(c *Client) { c.errorDecoder = d })
}

// WithCallContext derives every call's context with f, before the call's
// own [WithContext] options: for example the balancer's per-request retry
// policy (balancer.WithRequestRetry), or an attempt timeout, for all of
// the Client's calls.
func WithCallContext(f func(context.Context) context.Context) Option {
	return optionFunc(func(c *Client) {
		if f != nil {
			c.ctx = append(c.ctx, f)
		}
	})
}

// accept returns the Accept header of a call: its codec first, then the
// Client's.
func (c *Client) accept(call Codec) string {
	if call == nil || call == c.codecs[0] && len(c.codecs) == 1 {
		return c.acceptHeader
	}
	codecs := make([]Codec, 0, len(c.codecs)+1)
	codecs = append(codecs, call)
	for _, cd := range c.codecs {
		if cd != call {
			codecs = append(codecs, cd)
		}
	}
	return accept(codecs)
}

// responseCodec returns the codec that decodes an answer of contentType.
func (c *Client) responseCodec(call Codec, contentType string) Codec {
	mt := mediaType(contentType)
	if call != nil && (mt == "" || call.Handles(mt)) {
		return call
	}
	if mt != "" {
		for _, cd := range c.codecs {
			if cd.Handles(mt) {
				return cd
			}
		}
	}
	if call != nil {
		return call
	}
	return c.codecs[0]
}

// ErrInvalidClient is wrapped by the error of every call on a Client built
// with a bad service name or base URL, and of calls on a nil Client.
var ErrInvalidClient = errors.New("invalid client")

// New returns a Client for service that sends its requests through hc
// (http.DefaultClient if nil). The service name becomes the host of
// http://<service>/..., which the balancer's transport resolves; it may also
// be a host:port. A name that cannot be a URL host does not panic: every call
// returns an error wrapping [ErrInvalidClient].
func New(service string, hc *http.Client, opts ...Option) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{service: service, hc: hc, header: make(http.Header), maxBody: DefaultMaxResponseBytes}
	if service == "" || strings.ContainsAny(service, "/?#@ \t\r\n") {
		c.err = errors.New("service name " + strconv.Quote(service) + " cannot be a URL host")
	} else {
		c.base, c.err = parseBase("http://" + service)
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if len(c.codecs) == 0 {
		c.codecs = []Codec{JSON}
	}
	c.acceptHeader = accept(c.codecs)
	if c.err == nil {
		c.err = c.applyBasePath()
	}
	if c.err != nil {
		c.err = &clientError{c.err}
	}
	return c
}

// Service returns the service name the Client was built for.
func (c *Client) Service() string { return c.service }

// BaseURL returns the URL that call paths are appended to.
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("base URL " + strconv.Quote(s) + ": " + err.Error())
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("base URL " + strconv.Quote(s) + " is not an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("base URL " + strconv.Quote(s) + " must not have a query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// clientError marks a configuration error so it wraps ErrInvalidClient.
type clientError struct{ err error }

func (e *clientError) Error() string   { return "rest: invalid client: " + e.err.Error() }
func (e *clientError) Unwrap() []error { return []error{ErrInvalidClient, e.err} }
