package balancer

import "testing"

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		give, s string
		want    bool
	}{
		{"1.*", "1.0", true},
		{"1.*", "1.", true},
		{"1.*", "2.0", false},
		{"*", "", true},
		{"?", "", false},
		{"?", "a", true},
		{"?", "é", true},
		{"1.?", "1.10", false},
		{"*.0", "1.2.0", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**", "x", true},
		{"10.0.*.1", "10.0.3.1", true},
		{"10.0.*.1", "10.0.3.2", false},
		{"exact", "exact", true},
	}
	for _, tt := range tests {
		if got := globMatch(tt.give, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.give, tt.s, got, tt.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		give string
		s    string
		want bool
	}{
		{"1.0;1.1", "1.1", true},
		{"1.0; 1.1 ", "1.1", true},
		{"1.0;1.1", "1.2", false},
		{"1.0;2.*", "2.5", true},
		{";;", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		m := compileMatcher(tt.give)
		if got := m.match(tt.s); got != tt.want {
			t.Errorf("compileMatcher(%q).match(%q) = %v, want %v", tt.give, tt.s, got, tt.want)
		}
	}
	m := compileMatcher("10.0.0.1:8080;9090")
	if !m.matchAddress("10.0.0.1:8080", "10.0.0.1", 8080) || !m.matchAddress("10.0.0.2:9090", "10.0.0.2", 9090) ||
		m.matchAddress("10.0.0.1:8081", "10.0.0.1", 8081) {
		t.Error("matchAddress: host:port and port alternatives")
	}
	if m := compileMatcher("10.0.0.1"); !m.matchAddress("10.0.0.1:1", "10.0.0.1", 1) {
		t.Error("matchAddress: host alone")
	}
}

// FuzzMatcher checks that compiling and matching any value and any string
// never panics, that an exact alternative always matches itself, and that
// '*' alone matches everything.
func FuzzMatcher(f *testing.F) {
	for _, s := range []string{"1.0;1.1", "1.*", "?", "*a*b*", "", ";", "é?*", "\xff*"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		m := compileMatcher(pattern)
		_ = m.match(s)
		_ = m.matchAddress(s, s, 80)
		if !globMatch("*", s) {
			t.Fatalf("* does not match %q", s)
		}
		for _, e := range m.exact {
			if !m.match(e) {
				t.Fatalf("exact alternative %q does not match itself", e)
			}
		}
	})
}
