package rule

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

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

// valueSyntaxError is a JSON syntax error in a value, at a byte offset.
type valueSyntaxError struct {
	Offset int
	Msg    string
}

func (e *valueSyntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// parseObject parses a JSON object whose members are strings or numbers,
// appending to buf. Service names must be non-empty and unique. Values are
// trimmed. canon reports whether s is exactly the compact encoding of the
// result.
func parseObject(s string, buf []pair) (ps []pair, canon bool, err error) {
	p := objParser{s: s}
	ps = buf
	var seen map[string]struct{}
	p.ws()
	if !p.eat('{') {
		return nil, false, p.errf("expected '{'")
	}
	p.ws()
	if p.eat('}') {
		return ps, false, p.end()
	}
	for {
		p.ws()
		at := p.i
		if p.peek() != '"' {
			return nil, false, p.errf("expected a quoted service name")
		}
		k, err := p.str()
		if err != nil {
			return nil, false, err
		}
		if k == "" {
			return nil, false, &valueSyntaxError{at, "empty service name"}
		}
		if len(ps)-len(buf) < smallMap {
			for _, q := range ps[len(buf):] {
				if q.key == k {
					return nil, false, &valueSyntaxError{at, "duplicate service " + strconv.Quote(k)}
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*smallMap)
				for _, q := range ps[len(buf):] {
					seen[q.key] = struct{}{}
				}
			}
			if _, dup := seen[k]; dup {
				return nil, false, &valueSyntaxError{at, "duplicate service " + strconv.Quote(k)}
			}
			seen[k] = struct{}{}
		}
		p.ws()
		if !p.eat(':') {
			return nil, false, p.errf("expected ':' after " + strconv.Quote(k))
		}
		p.ws()
		var v string
		switch c := p.peek(); {
		case c == '"':
			if v, err = p.str(); err != nil {
				return nil, false, err
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if v, err = p.num(); err != nil {
				return nil, false, err
			}
			p.noncanon = true
		default:
			return nil, false, p.errf("value of " + strconv.Quote(k) + " must be a string")
		}
		if t := trimSpace(v); len(t) != len(v) {
			p.noncanon = true
			v = t
		}
		ps = append(ps, pair{k, v})
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return ps, !p.noncanon, p.end()
		}
		return nil, false, p.errf("expected ',' or '}'")
	}
}

type objParser struct {
	s        string
	i        int
	noncanon bool // white space, escapes, numbers or repairs seen
}

func (p *objParser) errf(msg string) error {
	if p.i >= len(p.s) {
		return &valueSyntaxError{p.i, "unexpected end: " + msg}
	}
	return &valueSyntaxError{p.i, msg}
}

func (p *objParser) end() error {
	p.ws()
	if p.i != len(p.s) {
		return p.errf("unexpected content after '}'")
	}
	return nil
}

func (p *objParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *objParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *objParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.noncanon = true
			p.i++
		default:
			return
		}
	}
}

func (p *objParser) num() (string, error) {
	start := p.i
	p.eat('-')
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.eat('0') {
		// a leading zero stands alone
	} else if digits() == 0 {
		return "", p.errf("invalid number")
	}
	if p.eat('.') && digits() == 0 {
		return "", p.errf("invalid number")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return "", p.errf("invalid number")
		}
	}
	return p.s[start:p.i], nil
}

// str reads a JSON string starting at the opening quote. Invalid UTF-8 and
// lone surrogates become U+FFFD, as in encoding/json.
func (p *objParser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			if !utf8.ValidString(s) {
				s = strings.ToValidUTF8(s, "\uFFFD")
				p.noncanon = true
			}
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	p.noncanon = true // escapes: re-encode
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			s := b.String()
			if !utf8.ValidString(s) {
				s = strings.ToValidUTF8(s, "\uFFFD")
			}
			return s, nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", p.errf("unterminated string")
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					save := p.i
					if p.eat('\\') && p.eat('u') {
						if r2, ok := p.hex4(); ok {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								b.WriteRune(d)
								continue
							}
						}
					}
					p.i = save
					r = utf8.RuneError
				}
				b.WriteRune(r)
			default:
				p.i--
				return "", p.errf("invalid escape '\\" + string(rune(e)) + "'")
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errf("unterminated string")
}

func (p *objParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

// writeJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, everything else as is (no HTML escaping, so
// headers stay readable).
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[last:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		}
		last = i + 1
	}
	b.WriteString(s[last:])
	b.WriteByte('"')
}

// trimSpace trims ASCII white space (the XML and JSON notion of it).
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
