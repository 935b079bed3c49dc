package rule

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The small JSON object reader and writer behind values and headers:
// {"service":"value",...}, without reflection.

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
