// Package version orders version strings, in one place, for every package
// that needs "oldest first": orchestration (old vs new routes) and the
// balancer's stable-version failover must agree on which version is oldest.
package version

import (
	"cmp"
	"strings"
)

// Default is the version of an instance that declares none.
const Default = "default"

// Compare orders versions oldest first: Default (and "") before everything,
// then naturally: runs of digits compare as numbers ("1.9" < "1.10"),
// everything else byte by byte. Strings that only differ in leading zeros
// ("1.01", "1.1") fall back to plain string order, so the order is total.
func Compare(a, b string) int {
	ad, bd := a == Default || a == "", b == Default || b == ""
	switch {
	case ad && bd:
		return strings.Compare(a, b)
	case ad:
		return -1
	case bd:
		return 1
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			da := strings.TrimLeft(a[si:i], "0")
			db := strings.TrimLeft(b[sj:j], "0")
			if c := cmp.Compare(len(da), len(db)); c != 0 {
				return c
			}
			if c := strings.Compare(da, db); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(a[i], b[j]); c != 0 {
			return c
		}
		i++
		j++
	}
	if c := cmp.Compare(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
