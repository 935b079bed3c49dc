package balancer

import (
	"strconv"

	"github.com/graylane/graylane/internal/pattern"
)

// matcher is a compiled filter value (internal/pattern: ';' alternatives,
// '*' and '?' wildcards), the one reading of filter values that the drain
// gate shares. A zero matcher matches nothing; callers only build one for a
// non-empty value. Matchers are built when a candidate set is computed,
// never on the pick path, and matching does not allocate.
type matcher struct{ m pattern.Matcher }

// compileMatcher compiles a filter value.
func compileMatcher(s string) matcher { return matcher{pattern.Compile(s)} }

// match reports whether s matches one of the alternatives.
func (m *matcher) match(s string) bool { return m.m.Match(s) }

// matchAddress reports whether an instance's address matches: an
// alternative may name "host:port", the host alone or the port alone.
func (m *matcher) matchAddress(hostPort, host string, port int) bool {
	if m.m.Match(hostPort) || m.m.Match(host) {
		return true
	}
	var buf [20]byte
	return m.m.Match(string(strconv.AppendInt(buf[:0], int64(port), 10)))
}
