package drain

import (
	"strconv"
	"testing"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// FuzzAnalyze parses arbitrary rule documents and checks Analyze against
// rule.Decide: when Analyze says a version is drained, no decision for any
// of a spread of requests and draws routes to it. Analyze never panics.
func FuzzAnalyze(f *testing.F) {
	for _, doc := range []string{strategyOld, strategyNew, weightOldZero, weightBoth, weightWild,
		blueGreenNew, blueGreenDefault, grayOldZero, grayOldSome, grayNoDefault, grayDefaultOtherType, grayWeightIgnored, versionAndWeight,
		weightRoute, plainWildcard, alternatives, otherOnly, regionOnly, defaultOnly} {
		f.Add(doc, "1.0")
		f.Add(doc, "1.1")
	}
	f.Add(`{"strategy":{"version":{"svc":"1.?"}}}`, "1.5")
	f.Add("strategy:\n  version-weight: '1.*=0;2.0=1'\n", "2.0")
	f.Fuzz(func(t *testing.T, doc, version string) {
		r, err := rule.Parse([]byte(doc))
		if err != nil {
			return
		}
		v := Analyze(r, "svc", version)
		if v.Reason == "" {
			t.Fatal("empty reason")
		}
		if v.Receiving {
			return
		}
		if version == "" {
			version = rule.DefaultVersion
		}
		for _, req := range requests {
			for _, draw := range draws {
				d := r.Decide(req, draw)
				if admitsVersion(d.Version, "svc", version) && admitsWeight(d.VersionWeight, "svc", version) {
					t.Fatalf("Analyze says %s is drained (%s), but request %v draw %d routes to it: version %q weight %q",
						version, v.Reason, req, draw, d.Version, d.VersionWeight)
				}
			}
		}
	})
}

var requests = func() []expr.Values {
	out := []expr.Values{expr.Map{}}
	for i := range 6 {
		out = append(out, expr.Map{"xyz": strconv.Itoa(i)})
	}
	return out
}()

var draws = []uint64{0, 1 << 62, 1 << 63, 3 << 62, ^uint64(0)}
