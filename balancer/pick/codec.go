package pick

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graylane/graylane/rule"
)

// This file is the route codec: how a Route travels between processes as
// Nepxion's n-d-* headers, over any carrier (HTTP headers, gRPC metadata,
// message headers). Header names come from the route type table
// (rule.RouteType.HeaderName); nothing else names them.

// Getter reads one value of a carrier by key. Keys are case-insensitive to
// the codec, which passes the routing headers' names in HTTP's canonical
// form ("N-D-Version"), where net/http keeps them: a carrier that stores
// keys in another case (gRPC metadata: lower case) maps them.
type Getter interface {
	// Get returns the first value of key, "" when absent.
	Get(key string) string
}

// Carrier holds a route between processes, like OpenTelemetry's
// propagation.TextMapCarrier: the balancer adapts http.Header, grpcroute
// adapts gRPC metadata, and message headers or W3C baggage adapt the
// same way.
type Carrier interface {
	Getter
	// Set replaces the values of key with value; an empty value removes
	// key (a routing header without value constrains nothing).
	Set(key, value string)
	// Keys lists the keys the carrier holds.
	Keys() []string
}

// ValuesSetter is implemented by carriers that hold several values per key
// (HTTP headers, gRPC metadata). [Inject] uses it to forward business
// headers whole; with a plain Carrier it joins their values with ", ".
type ValuesSetter interface {
	SetValues(key string, values []string)
}

// HeaderError is an n-d-* header whose value could not be read.
type HeaderError struct {
	Name  string // the header, e.g. "n-d-version"
	Value string // the value received
	Err   error  // the parser's error
}

// Error names the header and quotes the parser's message.
func (e *HeaderError) Error() string {
	return fmt.Sprintf("header %s %q: %v", e.Name, e.Value, e.Err)
}

// Unwrap returns the parser's error.
func (e *HeaderError) Unwrap() error { return e.Err }

// Inject writes r to c: each routing header the route carries is set and
// the others are removed, so c carries exactly this route; then the
// forwarded business headers are set, replacing values of the same name.
func Inject(r *Route, c Carrier) {
	for t := range rule.NumTypes {
		key := headerKeys[t]
		if key == "" {
			continue
		}
		if v := r.values[t]; v.IsZero() {
			c.Set(key, "")
		} else {
			c.Set(key, v.String())
		}
	}
	vs, multi := c.(ValuesSetter)
	for k, v := range r.Header {
		if multi {
			vs.SetValues(k, v)
		} else {
			c.Set(k, strings.Join(v, ", "))
		}
	}
}

// Extract reads the routing headers of c into a Route (not the forwarded
// business headers: which ones travel is the runtime's configuration). ok
// reports whether any routing header was present and not blank. A header
// that does not parse is left out of the route and reported in err (one
// *HeaderError per bad header, joined); the rest of the route is still
// returned.
func Extract(c Getter) (r Route, ok bool, err error) {
	var errs []error
	for t := range rule.NumTypes {
		key := headerKeys[t]
		if key == "" {
			continue
		}
		s := c.Get(key)
		if strings.TrimSpace(s) == "" {
			continue
		}
		ok = true
		v, perr := rule.ParseValue(s)
		if perr != nil {
			errs = append(errs, &HeaderError{Name: t.HeaderName(), Value: s, Err: perr})
			continue
		}
		r.Set(t, v)
	}
	return r, ok, errors.Join(errs...)
}

// Carries reports whether c holds any routing header that is not blank.
func Carries(c Getter) bool {
	for t := range rule.NumTypes {
		if key := headerKeys[t]; key != "" && strings.TrimSpace(c.Get(key)) != "" {
			return true
		}
	}
	return false
}

// headerKeys are the route types' headers in HTTP's canonical form
// ("N-D-Version"), the keys the codec passes to carriers.
var headerKeys = func() (keys [rule.NumTypes]string) {
	for t := range rule.NumTypes {
		keys[t] = canonical(t.HeaderName())
	}
	return keys
}()

// canonical returns a header name in HTTP's canonical form: upper case
// first and after each '-', lower case elsewhere (ASCII names only, as
// routing headers are).
func canonical(name string) string {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
}

// IsRoutingKey reports whether a carrier key is a routing one: it starts
// with n-d-, in any case.
func IsRoutingKey(k string) bool {
	return len(k) >= len(rule.HeaderPrefix) && strings.EqualFold(k[:len(rule.HeaderPrefix)], rule.HeaderPrefix)
}

// IsFoldedRoutingKey reports whether k is a routing key in any spelling a
// server may fold into one: n-d-* in any case, with '_' for either '-'.
// CGI and WSGI stacks read n_d_version as n-d-version (both become
// HTTP_N_D_VERSION), so a trusted edge drops every such spelling.
func IsFoldedRoutingKey(k string) bool {
	return len(k) >= len(rule.HeaderPrefix) &&
		(k[0]|0x20) == 'n' && (k[1] == '-' || k[1] == '_') &&
		(k[2]|0x20) == 'd' && (k[3] == '-' || k[3] == '_')
}

// Drop removes every routing key (n-d-*, in any case, and its n_d_*
// spellings: see IsFoldedRoutingKey) from c, as a trusted edge does with
// what arrives from outside, and reports whether it removed any.
func Drop(c Carrier) bool {
	dropped := false
	for _, k := range c.Keys() {
		if IsFoldedRoutingKey(k) {
			c.Set(k, "")
			dropped = true
		}
	}
	return dropped
}
