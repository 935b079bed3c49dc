package balancer

// The HTTP side of a rule's request values: what #H['name'] reads from an
// HTTP request. (Package expr evaluates conditions over any rule.Values and
// knows nothing of HTTP.)

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// RequestValues returns the values a rule's expressions read from an HTTP
// request (#H['name']), the way Nepxion reads them: a name is looked up as
// a query parameter, then as a cookie, then as a header, and a blank value
// (empty or white space) passes the name on to the next source. The first
// value wins where a name occurs several times in one source. Query
// parameter and cookie names match exactly; header names match in any
// case. Middleware decides with them; call it to decide for a request
// yourself ([Balancer.Decide]).
//
// The result is a [rule.ParamValues]: with the default header priority the
// rule's built-in <header> comes after the query parameter and the cookie
// but before the request's own header, as on a Nepxion hop.
//
// The conversion does not allocate, and neither does Lookup unless a
// query parameter is percent-encoded.
func RequestValues(r *http.Request) rule.Values { return (*requestValues)(r) }

// requestValues is an HTTP request as rule.ParamValues.
type requestValues http.Request

// Lookup returns the first value of name that is not blank from the query,
// a cookie or a header, in that order. When the name is present only with
// blank values, it returns the first of them (read as null).
func (r *requestValues) Lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	blank, found := r.param(name)
	if found && !expr.Blank(blank) {
		return blank, true
	}
	v, ok := headerValue(r.Header, name)
	switch {
	case ok && (!found || !expr.Blank(v)):
		return v, true
	case found:
		return blank, true
	}
	return "", false
}

// LookupParam returns the first value of name that is not blank from the
// query or a cookie.
func (r *requestValues) LookupParam(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if v, ok := r.param(name); ok && !expr.Blank(v) {
		return v, true
	}
	return "", false
}

// param returns the value of name from the query, else from a cookie: the
// first that is not blank, else the first blank one found.
func (r *requestValues) param(name string) (string, bool) {
	var blank string
	found := false
	if r.URL != nil && r.URL.RawQuery != "" {
		if v, ok := queryValue(r.URL.RawQuery, name); ok {
			if !expr.Blank(v) {
				return v, true
			}
			blank, found = v, true
		}
	}
	for _, line := range r.Header["Cookie"] {
		if v, ok := cookieValue(line, name); ok {
			if !expr.Blank(v) {
				return v, true
			}
			if !found {
				blank, found = v, true
			}
			break // the first cookie of that name, as Nepxion reads it
		}
	}
	return blank, found
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

// headerValue returns the first value of the header name in any case (see
// headerValues).
func headerValue(h http.Header, name string) (string, bool) {
	if vs := headerValues(h, name); len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// headerValues returns the values of the header name in any case: the
// header under its canonical name (where net/http keeps headers), else one
// set under exactly name without canonicalization. It canonicalizes the
// name on the stack, since indexing a map with string(bytes) does not
// allocate, so that a name written in lower case, as rules mostly do,
// costs one map access.
func headerValues(h http.Header, name string) []string {
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
	return vs
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
