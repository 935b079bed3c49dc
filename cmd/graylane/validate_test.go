package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
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

// TestValidateConsumerRegionNoWildcardWarning: a <region> entry's
// consumer-region-value is compared exactly by graylane, as by Nepxion
// (RegionFilterDiscoveryListener's List.contains), so a '*' in it reads
// alike on both sides and gets no wildcard warning; the provider regions,
// matched as patterns, still do.
func TestValidateConsumerRegionNoWildcardWarning(t *testing.T) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <discovery>
        <region>
            <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-region-value="dev*" provider-region-value="q?"/>
        </region>
    </discovery>
</rule>
`
	r, err := rule.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Discovery.RegionsFor("svc-a", "dev1", "svc-b"); got != ";" {
		t.Fatalf("consumer region dev1 against consumer-region-value dev*: %q, want \";\" (compared exactly)", got)
	}
	file := filepath.Join(t.TempDir(), "rule.xml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := call(t, "", "validate", file)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	checkWarnings(t, errOut, []string{
		file + ":5:134: warning: discovery region value \"q?\" (svc-a -> svc-b): '*' and '?' are wildcards in graylane",
	})
}
