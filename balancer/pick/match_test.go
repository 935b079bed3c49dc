package pick

import (
	"strconv"
	"strings"
	"testing"
)

// The pattern rules themselves are tested (and fuzzed) in internal/pattern;
// these cover what the balancer adds: addresses.

func TestMatcherAddress(t *testing.T) {
	tests := []struct {
		give           string
		hostPort, host string
		port           int
		want           bool
	}{
		{"10.0.0.1:8080;9090", "10.0.0.1:8080", "10.0.0.1", 8080, true},
		{"10.0.0.1:8080;9090", "10.0.0.2:9090", "10.0.0.2", 9090, true},
		{"10.0.0.1:8080;9090", "10.0.0.1:8081", "10.0.0.1", 8081, false},
		{"10.0.0.1", "10.0.0.1:1", "10.0.0.1", 1, true},
		{"10.0.*", "10.0.3.4:80", "10.0.3.4", 80, true},
		{"80?0", "10.0.0.1:8080", "10.0.0.1", 8080, true},
		{"", "10.0.0.1:8080", "10.0.0.1", 8080, false},
	}
	for _, tt := range tests {
		m := compileMatcher(tt.give)
		if got := m.matchAddress(tt.hostPort, tt.host, tt.port); got != tt.want {
			t.Errorf("compileMatcher(%q).matchAddress(%q, %q, %d) = %v, want %v", tt.give, tt.hostPort, tt.host, tt.port, got, tt.want)
		}
	}
	m := compileMatcher("1.0;2.*")
	if !m.match("2.1") || m.match("1.1") {
		t.Error("match: alternatives and wildcards")
	}
}

func TestMatcherAddressDoesNotAllocate(t *testing.T) {
	m := compileMatcher("10.0.0.9;9090")
	if n := testing.AllocsPerRun(100, func() { m.matchAddress("10.0.0.1:8080", "10.0.0.1", 8080) }); n != 0 {
		t.Errorf("%v allocations per address match, want 0", n)
	}
}

// FuzzMatcherAddress checks that address matching never panics and that a
// value naming an instance's host:port, host or port always matches it.
func FuzzMatcherAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.1:8080;9090", "10.*", "?", "", ";", "é?*", "\xff*"} {
		f.Add(s, "10.0.0.1", 8080)
	}
	f.Fuzz(func(t *testing.T, value, host string, port int) {
		hostPort := host + ":" + strconv.Itoa(port)
		m := compileMatcher(value)
		_ = m.matchAddress(hostPort, host, port)
		for _, name := range []string{hostPort, host, strconv.Itoa(port)} {
			if name == "" || strings.TrimSpace(name) != name || strings.ContainsAny(name, ";*?") {
				continue
			}
			if m := compileMatcher(name); !m.matchAddress(hostPort, host, port) {
				t.Fatalf("value %q does not match address %q", name, hostPort)
			}
		}
	})
}
