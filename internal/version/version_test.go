package version

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		give []string
		want []string
	}{
		{give: []string{"1.1", "1.0", "default"}, want: []string{"default", "1.0", "1.1"}},
		{give: []string{"1.10", "1.9", "1.2"}, want: []string{"1.2", "1.9", "1.10"}},
		{give: []string{"2.0", "", "10.0"}, want: []string{"", "2.0", "10.0"}},
		{give: []string{"20261122-1", "20251231-9"}, want: []string{"20251231-9", "20261122-1"}},
		{give: []string{"v1.1", "v1.01", "v1.0"}, want: []string{"v1.0", "v1.01", "v1.1"}},
		{give: []string{"gray", "base"}, want: []string{"base", "gray"}},
		{give: []string{"1.0-rc", "1.0"}, want: []string{"1.0", "1.0-rc"}},
	}
	for _, tt := range tests {
		got := slices.Clone(tt.give)
		slices.SortFunc(got, Compare)
		if !slices.Equal(got, tt.want) {
			t.Errorf("sort %q = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// FuzzCompare checks that Compare is a total order: antisymmetric, zero only
// for equal strings, and transitive on the triples the fuzzer finds.
func FuzzCompare(f *testing.F) {
	f.Add("1.9", "1.10", "1.01")
	f.Add("default", "", "0")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba {
			t.Fatalf("Compare(%q,%q)=%d but Compare(%q,%q)=%d", a, b, ab, b, a, ba)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("Compare(%q,%q)=%d", a, b, ab)
		}
		if ab <= 0 && Compare(b, c) <= 0 && Compare(a, c) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	})
}
