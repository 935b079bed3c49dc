package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/graylane/graylane/balancer"
)

// Empty as a request type sends no body; as a response type it discards the
// body. Use it for calls that carry nothing one way:
//
//	_, err := rest.Post[Order, rest.Empty](ctx, c, "/orders", o)
//	_, err = rest.Delete[rest.Empty](ctx, c, "/orders/{id}", rest.Param("id", id))
type Empty struct{}

// CallOption adds something to one call: a query parameter, a header, a
// path parameter, a context change.
type CallOption interface{ applyCall(*call) }

type callFunc func(*call)

func (f callFunc) applyCall(c *call) { f(c) }

type call struct {
	query  url.Values
	header http.Header
	params []param
	ctx    []func(context.Context) context.Context
	codec  Codec
}

type param struct {
	name, value string
	used        bool
}

// Query adds a query parameter (name=value, escaped) to the call. Repeat it
// for several values of one name. Parameters already in the path are kept.
func Query(name, value string) CallOption {
	return callFunc(func(c *call) {
		if c.query == nil {
			c.query = make(url.Values)
		}
		c.query.Add(name, value)
	})
}

// Header sets a request header for the call, replacing the Client's
// [WithHeader] value of the same name. Setting Content-Type or Accept
// replaces the codec's defaults.
func Header(name, value string) CallOption {
	return callFunc(func(c *call) {
		if c.header == nil {
			c.header = make(http.Header)
		}
		c.header.Set(name, value)
	})
}

// Param fills the path template placeholder {name} with value, escaped as
// one path segment ("a/b" becomes "a%2Fb"). Every placeholder needs a Param
// and every Param a placeholder; a mismatch fails the call before sending.
func Param(name, value string) CallOption {
	return callFunc(func(c *call) { c.params = append(c.params, param{name: name, value: value}) })
}

// WithContext derives the call's request context with f, after the caller's
// context: the way to attach per-call values that a transport reads, such as
// the balancer's retry permission for a non-idempotent request.
func WithContext(f func(context.Context) context.Context) CallOption {
	return callFunc(func(c *call) {
		if f != nil {
			c.ctx = append(c.ctx, f)
		}
	})
}

// Encoding encodes the call's request with codec, and asks for (and
// prefers to decode) an answer in codec's media type ahead of the Client's
// codecs. A nil codec changes nothing.
func Encoding(codec Codec) CallOption {
	return callFunc(func(c *call) {
		if codec != nil {
			c.codec = codec
		}
	})
}

// Retryable marks the call as safe to send again to another instance even
// though its method is not idempotent (a POST the service deduplicates by an
// idempotency key, say): the balancer's transport then retries it like a GET
// after a connection error or a 502, 503 or 504. Other transports ignore it.
func Retryable() CallOption { return WithContext(balancer.WithRetryable) }

// Get sends GET path and decodes the response into Resp.
func Get[Resp any](ctx context.Context, c *Client, path string, opts ...CallOption) (Resp, error) {
	return Do[Empty, Resp](ctx, c, http.MethodGet, path, Empty{}, opts...)
}

// Post sends POST path with req as the encoded body and decodes the response
// into Resp.
func Post[Req, Resp any](ctx context.Context, c *Client, path string, req Req, opts ...CallOption) (Resp, error) {
	return Do[Req, Resp](ctx, c, http.MethodPost, path, req, opts...)
}

// Put sends PUT path with req as the encoded body and decodes the response into
// Resp.
func Put[Req, Resp any](ctx context.Context, c *Client, path string, req Req, opts ...CallOption) (Resp, error) {
	return Do[Req, Resp](ctx, c, http.MethodPut, path, req, opts...)
}

// Patch sends PATCH path with req as the encoded body and decodes the response
// into Resp.
func Patch[Req, Resp any](ctx context.Context, c *Client, path string, req Req, opts ...CallOption) (Resp, error) {
	return Do[Req, Resp](ctx, c, http.MethodPatch, path, req, opts...)
}

// Delete sends DELETE path and decodes the response into Resp ([Empty] to
// ignore it).
func Delete[Resp any](ctx context.Context, c *Client, path string, opts ...CallOption) (Resp, error) {
	return Do[Empty, Resp](ctx, c, http.MethodDelete, path, Empty{}, opts...)
}

// Do sends one request: method, the Client's base URL joined with path (a
// template whose {name} placeholders the [Param] options fill; it may carry
// a query), req encoded by the call's codec ([Encoding]; else the Client's
// first, JSON by default; [Empty]: no body; []byte: sent as is; an
// io.Reader: streamed as is), and the call options. A 2xx response is
// decoded into Resp by the codec that handles its Content-Type (see the
// package documentation); an io.ReadCloser Resp is the body itself, unread.
// Any other status returns a [*StatusError], or what the Client's
// [ErrorDecoder] makes of it. Other response bodies are always drained and
// closed.
func Do[Req, Resp any](ctx context.Context, c *Client, method, path string, req Req, opts ...CallOption) (Resp, error) {
	var zero Resp
	if c == nil {
		return zero, &clientError{errors.New("nil *rest.Client")}
	}
	if c.err != nil {
		return zero, c.err
	}
	if ctx == nil {
		return zero, errors.New("rest: nil context")
	}
	var cl call
	for _, o := range opts {
		if o != nil {
			o.applyCall(&cl)
		}
	}
	u, err := c.url(path, &cl)
	if err != nil {
		return zero, err
	}
	codec := c.codecs[0]
	if cl.codec != nil {
		codec = cl.codec
	}
	rd, contentType, err := encode(codec, req)
	if err != nil {
		return zero, fmt.Errorf("rest: %s %s: encode request: %w", method, u.Redacted(), err)
	}
	for _, f := range c.ctx {
		ctx = f(ctx)
	}
	for _, f := range cl.ctx {
		ctx = f(ctx)
	}
	cancel := context.CancelFunc(noCancel)
	if c.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
		}
	}
	// A streamed response keeps the context until its body is closed.
	streamed := false
	defer func() {
		if !streamed {
			cancel()
		}
	}()
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return zero, fmt.Errorf("rest: %s %s: %w", method, u.Redacted(), err)
	}
	hr.Header.Set("Accept", c.accept(cl.codec))
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	for k, vs := range c.header {
		hr.Header[k] = vs
	}
	for k, vs := range cl.header {
		hr.Header[k] = vs
	}
	for _, ic := range c.interceptors {
		if err := ic(hr); err != nil {
			return zero, fmt.Errorf("rest: %s %s: interceptor: %w", method, u.Redacted(), err)
		}
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return zero, fmt.Errorf("rest: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer drainClose(resp.Body)
		se := newStatusError(hr, resp)
		if c.errorDecoder != nil {
			if err := c.errorDecoder(se); err != nil {
				return zero, err
			}
		}
		return zero, se
	}
	if p, ok := any(&zero).(*io.ReadCloser); ok {
		streamed = true
		*p = &cancelOnClose{resp.Body, cancel}
		return zero, nil
	}
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusResetContent || hr.Method == http.MethodHead {
		return zero, nil
	}
	data, err := readLimited(resp.Body, c.maxBody)
	if err != nil {
		return zero, fmt.Errorf("rest: %s %s: read response: %w", hr.Method, u.Redacted(), err)
	}
	return decode[Resp](c.responseCodec(cl.codec, resp.Header.Get("Content-Type")), hr, resp, data)
}

// noCancel is the cancel function of a call without a timeout of its own:
// a package-level function, as a literal in a generic function allocates.
func noCancel() {}

// cancelOnClose ends a streamed call's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// url joins the base URL and the expanded path, and adds the query options.
func (c *Client) url(path string, cl *call) (*url.URL, error) {
	p, err := expand(path, cl.params)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	ref, err := url.Parse(p)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	if ref.Scheme != "" || ref.Host != "" || ref.Opaque != "" || ref.User != nil {
		return nil, &PathError{Path: path, Err: errors.New("must be a path relative to the service, not a URL")}
	}
	u := *c.base
	raw := u.EscapedPath()
	rp := ref.EscapedPath()
	if rp != "" && rp[0] != '/' {
		raw += "/"
	}
	raw += rp
	if u.Path, err = url.PathUnescape(raw); err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	u.RawPath = raw
	u.RawQuery = ref.RawQuery
	if len(cl.query) > 0 {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += cl.query.Encode()
	}
	return &u, nil
}

// PathError is a call path that cannot be used: a template placeholder
// without a value, a parameter without a placeholder, bad escaping, or an
// absolute URL where a path belongs. The call is not sent.
type PathError struct {
	Path string // the path as passed to the call
	Err  error  // what is wrong
}

// Error says which path and what is wrong with it.
func (e *PathError) Error() string {
	return "rest: path " + strconv.Quote(e.Path) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *PathError) Unwrap() error { return e.Err }

// expand replaces each {name} in tmpl with its parameter, escaped as a path
// segment. It fails on an unterminated or empty placeholder, a placeholder
// without a parameter and a parameter that no placeholder uses. Placeholders
// are only recognised before the query ('?').
func expand(tmpl string, params []param) (string, error) {
	if len(params) == 0 && !strings.ContainsAny(tmpl, "{}") {
		return tmpl, nil
	}
	end := strings.IndexByte(tmpl, '?')
	if end < 0 {
		end = len(tmpl)
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 16)
	i := 0
	for i < end {
		open := strings.IndexByte(tmpl[i:end], '{')
		if open < 0 {
			break
		}
		open += i
		b.WriteString(tmpl[i:open])
		closing := strings.IndexByte(tmpl[open:end], '}')
		if closing < 0 {
			return "", fmt.Errorf("unterminated placeholder at offset %d", open)
		}
		closing += open
		name := tmpl[open+1 : closing]
		if !validName(name) {
			return "", fmt.Errorf("bad placeholder %q at offset %d (want {name} with letters, digits, '_', '-' or '.')", tmpl[open:closing+1], open)
		}
		found := false
		for k := range params {
			if params[k].name == name {
				b.WriteString(url.PathEscape(params[k].value))
				params[k].used = true
				found = true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("no Param for placeholder {%s}", name)
		}
		i = closing + 1
	}
	if strings.IndexByte(tmpl[i:end], '}') >= 0 {
		return "", fmt.Errorf("unmatched '}' at offset %d", i+strings.IndexByte(tmpl[i:end], '}'))
	}
	b.WriteString(tmpl[i:])
	for _, p := range params {
		if !p.used {
			return "", fmt.Errorf("parameter %q has no placeholder {%s} in the path", p.name, p.name)
		}
	}
	return b.String(), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// encode returns the request body for req and its Content-Type: none for
// Empty, []byte as is, an io.Reader streamed as is (replayable, so that a
// transport may resend it, when it is a *bytes.Reader, *bytes.Buffer or
// *strings.Reader), anything else encoded by codec into a replayable
// buffer.
func encode[Req any](codec Codec, req Req) (io.Reader, string, error) {
	// One conversion to an interface, shared by the switch and the codec.
	boxed := any(req)
	switch v := boxed.(type) {
	case Empty:
		return nil, "", nil
	case []byte:
		return bytes.NewReader(v), codec.ContentType(), nil
	case io.Reader:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil, "", nil
		}
		return v, "application/octet-stream", nil
	}
	b, err := codec.Marshal(boxed)
	if err != nil {
		return nil, "", err
	}
	return bytes.NewReader(b), codec.ContentType(), nil // sets GetBody, so transports can resend it
}

func decode[Resp any](codec Codec, hr *http.Request, resp *http.Response, data []byte) (Resp, error) {
	var out Resp
	switch p := any(&out).(type) {
	case *Empty:
		return out, nil
	case *[]byte:
		*p = data
		return out, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return out, nil
	}
	if err := codec.Unmarshal(data, &out); err != nil {
		return out, &DecodeError{
			Method:      hr.Method,
			URL:         hr.URL.Redacted(),
			StatusCode:  resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			Body:        clip(data, MaxErrorBody),
			Err:         err,
		}
	}
	return out, nil
}

// readLimited reads all of r, failing with ErrResponseTooLarge past limit.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrResponseTooLarge, limit)
	}
	return data, nil
}

// drainClose reads what is left of a body, up to maxDrain, so the
// connection goes back to the pool, then closes it.
func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, maxDrain)
	_ = rc.Close()
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return bytes.Clone(b)
}
