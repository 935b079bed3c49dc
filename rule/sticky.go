package rule

import (
	"strconv"
	"strings"
)

// The sticky key of gray conditions, a graylane extension.

// parseSticky reads a sticky key: #H['name'], #H["name"] or a bare name.
func parseSticky(s string) (string, string) {
	s = trimSpace(s)
	name := s
	if rest, ok := strings.CutPrefix(s, "#H["); ok {
		if len(rest) < 3 || rest[len(rest)-1] != ']' {
			return "", "sticky key " + strconv.Quote(s) + " must read #H['name']"
		}
		inner := rest[:len(rest)-1]
		q := inner[0]
		if (q != '\'' && q != '"') || inner[len(inner)-1] != q || len(inner) < 3 {
			return "", "sticky key " + strconv.Quote(s) + " must read #H['name']"
		}
		name = inner[1 : len(inner)-1]
		if strings.IndexByte(name, q) >= 0 {
			return "", "sticky key " + strconv.Quote(s) + " has a stray quote"
		}
	} else if strings.ContainsAny(s, "#[]'\" \t\r\n") {
		return "", "sticky key " + strconv.Quote(s) + " must be #H['name'] or a bare name"
	}
	if name == "" {
		return "", "empty sticky key"
	}
	if !validText(name) {
		return "", "sticky key " + strconv.Quote(s) + " holds a control character"
	}
	return name, ""
}

func formatSticky(name string) string {
	if strings.IndexByte(name, '\'') >= 0 {
		return `#H["` + name + `"]`
	}
	return "#H['" + name + "']"
}
