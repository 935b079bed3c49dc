package rest

import (
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
		o.apply(c)
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
