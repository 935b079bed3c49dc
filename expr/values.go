package expr

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Values gives an expression the values of one request by name: what
// #H['name'] reads.
//
// Lookup reports whether the name is present. Implementations used with
// [Condition.Match] on a hot path should not allocate; the ones in this
// package don't, except to unescape a query parameter that needs it.
type Values interface {
	Lookup(name string) (value string, ok bool)
}

// Map is Values held in a map, with names matched exactly.
type Map map[string]string

// Lookup returns m[name].
func (m Map) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// ValuesFunc adapts a function to Values, for sources such as gRPC metadata.
type ValuesFunc func(name string) (string, bool)

// Lookup calls f(name).
func (f ValuesFunc) Lookup(name string) (string, bool) { return f(name) }

// Request reads the values of an HTTP request the way Nepxion does: a name
// is looked up as a query parameter, then as a cookie, then as a header.
// The first value wins where a name occurs several times. Query parameter
// and cookie names match exactly; header names match in any case.
//
// Convert with [FromRequest]; the conversion does not allocate, and neither
// does Lookup unless a query parameter is percent-encoded.
type Request http.Request

var _ Values = (*Request)(nil)

// FromRequest returns r as Values.
func FromRequest(r *http.Request) *Request { return (*Request)(r) }

// Lookup returns the value of name from the query, a cookie or a header, in
// that order.
func (r *Request) Lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		if v, ok := queryValue(r.URL.RawQuery, name); ok {
			return v, true
		}
	}
	for _, line := range r.Header["Cookie"] {
		if v, ok := cookieValue(line, name); ok {
			return v, true
		}
	}
	return headerValue(r.Header, name)
}

// queryValue finds name in a raw query the way url.ParseQuery reads it
// (pairs split on '&', pairs with ';' or bad escapes skipped), without
// building the whole map.
func queryValue(query, name string) (string, bool) {
	// Most lookups are for headers and miss here: without escapes, a query
	// that does not contain the name cannot have it as a key.
	if !strings.Contains(query, name) && !hasEscape(query) {
		return "", false
	}
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		key, val, _ := strings.Cut(pair, "=")
		if !queryEqual(key, name) {
			continue
		}
		if hasEscape(val) {
			u, err := url.QueryUnescape(val)
			if err != nil {
				continue
			}
			val = u
		}
		return val, true
	}
	return "", false
}

// queryEqual reports whether the raw query key, once unescaped, is name.
func queryEqual(key, name string) bool {
	if !hasEscape(key) {
		return key == name
	}
	u, err := url.QueryUnescape(key)
	return err == nil && u == name
}

// hasEscape reports whether a query component needs unescaping: whether it
// holds a '%' or a '+'. (strings.ContainsAny builds a set on every call.)
func hasEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			return true
		}
	}
	return false
}

// cookieValue finds name in one Cookie header line ("a=1; b=2"). A value in
// double quotes is returned without them, as net/http does.
func cookieValue(line, name string) (string, bool) {
	if !strings.Contains(line, name) {
		return "", false
	}
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = textproto.TrimString(part)
		key, val, ok := strings.Cut(part, "=")
		if !ok || key != name {
			continue
		}
		if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		return val, true
	}
	return "", false
}

// headerValue returns the first value of the header name in any case: the
// header under its canonical name (where net/http keeps headers), else one
// set under exactly name without canonicalization. It canonicalizes the
// name on the stack, since indexing a map with string(bytes) does not
// allocate, so that a name written in lower case, as rules mostly do,
// costs one map access.
func headerValue(h http.Header, name string) (string, bool) {
	var buf [64]byte
	var vs []string
	switch {
	case len(name) > len(buf):
		if vs = h[textproto.CanonicalMIMEHeaderKey(name)]; len(vs) == 0 {
			vs = h[name]
		}
	case canonicalHeader(buf[:len(name)], name):
		if vs = h[string(buf[:len(name)])]; len(vs) == 0 && string(buf[:len(name)]) != name {
			vs = h[name]
		}
	default: // not a valid header name, so net/http did not canonicalize it
		vs = h[name]
	}
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// canonicalHeader writes the canonical form of the header name to b, as
// textproto.CanonicalMIMEHeaderKey does, and reports whether name is a valid
// header name, which alone have a canonical form.
func canonicalHeader(b []byte, name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isTokenByte(c) {
			return false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	return true
}

// isTokenByte reports whether c may appear in an HTTP header name (RFC 7230
// token), the names textproto canonicalizes.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '#', '$', '%', '&', '\'', '*', '+', '^', '`', '|', '~':
		return true
	}
	return false
}
