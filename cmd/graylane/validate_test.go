package main

import (
	"strings"
	"testing"
)

// TestValidateDiscoveryFilters checks that validate no longer lists the
// <discovery> section's host and region filters as ignored (graylane
// applies them) and warns where a Java hop reads them differently.
func TestValidateDiscoveryFilters(t *testing.T) {
	const file = "testdata/discovery-filters.xml"
	want := []string{
		file + ":3:5: warning: ignored by graylane (a Java hop may use it): register",
		file + ":7:9: warning: discovery blacklist value \"11.*\": '*' and '?' are wildcards in graylane",
		file + ":8:36: warning: discovery blacklist service-name \"Svc-B\": graylane matches it to the provider without regard to case",
		file + ":11:137: warning: discovery region value \"q?\" (svc-a -> svc-b): '*' and '?' are wildcards in graylane",
	}
	code, out, errOut := call(t, "", "validate", file)
	if code != exitOK || out != file+": valid rule: ignored sections register\n" {
		t.Errorf("exit %d, stdout %q; want 0 and only register ignored", code, out)
	}
	checkWarnings(t, errOut, want)
	// The portable rules of Nepxion's examples carry the filters without
	// a warning about them.
	code, out, errOut = call(t, "", "validate", "../../rule/testdata/nepxion/example-service--rule.xml")
	if code != exitOK || strings.Contains(errOut, "discovery") || strings.Contains(out, "discovery") {
		t.Errorf("example-service rule.xml: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
}

// checkWarnings checks that stderr holds one line a warning, each starting
// with the wanted text, in order.
func checkWarnings(t *testing.T, stderr string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d warnings, want %d:\n%s", len(lines), len(want), stderr)
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("warning %d:\n got %s\nwant %s...", i, lines[i], w)
		}
	}
}
