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
// (rule.RouteType.HeaderName); nothing else names them. Every other n-d-*
// header travels as it arrived (see IsPassedKey), except Nepxion's
// n-d-service-* identity headers, which each hop sets to its own (see
// identity.go), as Nepxion's interceptors do.

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

// KeyLister is implemented by carriers that list their keys (a Carrier
// does, through Keys). [Extract] reads through it the n-d-* keys no route
// type owns, to carry them on as they are.
type KeyLister interface {
	Keys() []string
}

// PassedKeyLister is implemented by carriers that list, without
// allocating when there are none, their keys that [IsPassedKey] accepts.
// [Extract] prefers it to [KeyLister], whose Keys allocates a list on
// every request; the balancer's HTTP and gRPC carriers implement it.
type PassedKeyLister interface {
	PassedKeys() []string
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
// the others are removed, so c carries exactly this route; the n-d-*
// headers the route passes on as they arrived are set; then the forwarded
// business headers are set, replacing values of the same name. Inject
// writes no identity headers: see [IdentityHeaders].
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
	for i := range r.passed {
		p := &r.passed[i]
		if multi {
			vs.SetValues(p.key, p.values)
		} else {
			c.Set(p.key, p.values[0])
		}
	}
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
//
// The other n-d-* headers of c ([IsPassedKey]: no route type reads them,
// and they are not identity headers) go into the route as they are, to be
// passed on by Inject; they do not count for ok, as they decide nothing.
// Extract finds them when c lists its keys ([PassedKeyLister],
// [KeyLister]); a plain Getter passes none on.
func Extract(c Getter) (r Route, ok bool, err error) {
	r.passed = extractPassed(c)
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

// extractPassed returns the n-d-* headers of c that no route type reads,
// with their first value, for Inject to pass on; nil when there are none.
func extractPassed(c Getter) []passedHeader {
	var keys []string
	switch l := c.(type) {
	case PassedKeyLister:
		keys = l.PassedKeys()
	case KeyLister:
		for _, k := range l.Keys() {
			if IsPassedKey(k) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// Two allocations whatever the count: the headers and their values.
	passed := make([]passedHeader, 0, len(keys))
	values := make([]string, len(keys))
	for _, k := range keys {
		v := c.Get(k)
		if strings.TrimSpace(v) == "" {
			continue
		}
		n := len(passed)
		values[n] = v
		passed = append(passed, passedHeader{key: k, values: values[n : n+1 : n+1]})
	}
	if len(passed) == 0 {
		return nil
	}
	return passed
}

// IsPassedKey reports whether a carrier key is an n-d-* header that a hop
// passes on as it arrived: an n-d-* name (in any case) that no route type
// reads and that is not one of the n-d-service-* identity headers each hop
// sets for itself. Nepxion's interceptors forward every n-d-* header but
// those (AbstractStrategyInterceptor.isHeaderContainsExcludeInner), so the
// failover, transfer and group headers, and any a newer Nepxion adds, cross
// a graylane hop unchanged.
func IsPassedKey(k string) bool {
	if !IsRoutingKey(k) {
		return false
	}
	for t := range rule.NumTypes {
		if h := headerKeys[t]; len(h) == len(k) && strings.EqualFold(h, k) {
			return false
		}
	}
	return !isIdentityKey(k)
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
