package rule

import (
	"unicode/utf8"
)

// Small text helpers shared by the readers and builders.

// dupSet detects repeated strings: a linear scan while small, a map beyond,
// so large documents are not quadratic.
type dupSet struct {
	small []string
	m     map[string]struct{}
}

// add records s and reports whether it was new.
func (d *dupSet) add(s string) bool {
	if d.m != nil {
		if _, ok := d.m[s]; ok {
			return false
		}
		d.m[s] = struct{}{}
		return true
	}
	for _, x := range d.small {
		if x == s {
			return false
		}
	}
	d.small = append(d.small, s)
	if len(d.small) > 16 {
		d.m = make(map[string]struct{}, 2*len(d.small))
		for _, x := range d.small {
			d.m[x] = struct{}{}
		}
	}
	return true
}

// skipSpace returns the first offset at or after off that is not white space.
func skipSpace(data []byte, off int) int {
	for off < len(data) && isSpace(data[off]) {
		off++
	}
	return off
}

func indexOf(names []string, s string) int {
	for i, n := range names {
		if n == s {
			return i
		}
	}
	return -1
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

// validText reports whether s is valid UTF-8 without control characters
// other than tab, newline and carriage return.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
