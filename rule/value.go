package rule

import (
	"strings"
)

// Value: the routing value a route, a <strategy> child or an n-d-* header carries.

// Value is one routing value: what an n-d-* header carries and what a
// <strategy> child or a <route> holds. It is either a map by service
// ({"svc-a":"1.0","svc-b":"1.1"}) or one plain string for every service.
// Several alternatives separate with ';' ("1.0;1.1"); weight values read
// "1.0=90;1.1=10".
//
// A Value is a small immutable handle: copying it is free, the zero Value
// constrains nothing, and any number of goroutines may use one at once.
type Value struct {
	v *value
}

type value struct {
	plain bool
	all   string            // the plain string, when plain
	pairs []pair            // service -> value, in document order, when a map
	index map[string]string // look-up table for larger maps; nil for small ones
	enc   string            // the header encoding, computed once
}

// valueWithPairs lets ParseValue allocate a small map value and its pairs at
// once; the Value points at the embedded value.
type valueWithPairs struct {
	value
	inline [4]pair
}

type pair struct {
	key, val string
}

// smallMap is the largest map looked up by linear scan; a scan over a few
// short keys beats hashing.
const smallMap = 8

// PlainValue returns the Value that applies s to every service. An empty s
// (after trimming white space) gives the zero Value.
func PlainValue(s string) Value {
	s = trimSpace(s)
	if s == "" {
		return Value{}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return Value{&value{plain: true, all: s, enc: s}}
}

// MapValue returns the Value holding one entry per service, in the order
// given by keys. Entries with an empty service name or value are dropped; a
// later duplicate replaces an earlier one. No entries gives the zero Value.
func MapValue(keys []string, m map[string]string) Value {
	ps := make([]pair, 0, len(keys))
	for _, k := range keys {
		ps = setPair(ps, k, m[k])
	}
	return newMapValue(ps)
}

func setPair(ps []pair, k, v string) []pair {
	k, v = strings.ToValidUTF8(k, "\uFFFD"), trimSpace(strings.ToValidUTF8(v, "\uFFFD"))
	if k == "" || v == "" {
		return ps
	}
	for i := range ps {
		if ps[i].key == k {
			ps[i].val = v
			return ps
		}
	}
	return append(ps, pair{k, v})
}

func newMapValue(ps []pair) Value {
	if len(ps) == 0 {
		return Value{}
	}
	v := &value{}
	v.setMap(ps, "")
	return Value{v}
}

// setMap makes v a map value over ps. enc is the encoding when the caller
// knows it (the input was already canonical), else "".
func (v *value) setMap(ps []pair, enc string) {
	v.pairs = ps
	if len(ps) > smallMap {
		v.index = make(map[string]string, len(ps))
		for _, p := range ps {
			v.index[p.key] = p.val
		}
	}
	if enc != "" {
		v.enc = enc
		return
	}
	var b strings.Builder
	n := 2
	for _, p := range ps {
		n += len(p.key) + len(p.val) + 6
	}
	b.Grow(n)
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, p.key)
		b.WriteByte(':')
		writeJSONString(&b, p.val)
	}
	b.WriteByte('}')
	v.enc = b.String()
}

// For returns the constraint for one service. ok is false when the Value
// does not constrain the service: the zero Value, or a map without it.
func (v Value) For(service string) (s string, ok bool) {
	if v.v == nil {
		return "", false
	}
	if v.v.plain {
		return v.v.all, true
	}
	if v.v.index != nil {
		s, ok = v.v.index[service]
		return s, ok
	}
	for i := range v.v.pairs {
		if v.v.pairs[i].key == service {
			return v.v.pairs[i].val, true
		}
	}
	return "", false
}

// String returns the n-d-* header encoding: compact JSON for a map, the
// string itself for a plain value, "" for the zero Value. It does not
// allocate.
func (v Value) String() string {
	if v.v == nil {
		return ""
	}
	return v.v.enc
}

// IsZero reports whether v constrains nothing.
func (v Value) IsZero() bool { return v.v == nil }

// IsPlain reports whether v is one string for every service.
func (v Value) IsPlain() bool { return v.v != nil && v.v.plain }

// Services returns the services of a map Value in document order; nil for a
// plain or zero Value.
func (v Value) Services() []string {
	if v.v == nil || v.v.plain {
		return nil
	}
	out := make([]string, len(v.v.pairs))
	for i, p := range v.v.pairs {
		out[i] = p.key
	}
	return out
}

// Equal reports whether two Values carry the same constraints in the same
// order.
func (v Value) Equal(o Value) bool {
	return v.String() == o.String() && v.IsPlain() == o.IsPlain()
}

// ParseValue decodes an n-d-* header value: a JSON object mapping service
// names to strings (numbers are taken by their literal text), or a plain
// string for every service. Surrounding white space is ignored; an empty
// string gives the zero Value. Entries with an empty value are dropped, as
// Nepxion ignores them.
func ParseValue(s string) (Value, error) {
	s = trimSpace(s)
	if s == "" {
		return Value{}, nil
	}
	if s[0] != '{' {
		return PlainValue(s), nil
	}
	w := &valueWithPairs{}
	v := &w.value
	ps, canon, err := parseObject(s, w.inline[:0])
	if err != nil {
		return Value{}, &Error{Path: "value", Msg: err.Error(), Err: withCause(ErrInvalid, err)}
	}
	out := ps[:0]
	for _, p := range ps {
		if p.val != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return Value{}, nil
	}
	enc := ""
	if canon && len(out) == len(ps) {
		enc = s // already compact JSON of strings: it is its own encoding
	}
	v.setMap(out, enc)
	return Value{v}, nil
}
