package rollout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/rule"
)

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan([]byte(testPlan))
	if err != nil {
		t.Fatal(err)
	}
	if p.RuleKey != "shop-shop" || p.New != Newest || p.Old != Oldest || len(p.Steps) != 5 || p.Hold != time.Minute ||
		p.Analysis.Window != time.Minute || p.Analysis.MinRequests != 50 || p.Analysis.MaxP99Ratio != 1.5 ||
		p.Analysis.MaxInconclusive != DefaultMaxInconclusive || p.Analysis.Failures != 1 {
		t.Errorf("%+v", p)
	}
	p, err = ParsePlan([]byte(strings.Replace(testPlan, "failures: 1", "failures: 2\n  maxInconclusive: 5", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Analysis.MaxInconclusive != 5 || p.Analysis.Failures != 2 {
		t.Errorf("maxInconclusive %d failures %d, want 5 and 2", p.Analysis.MaxInconclusive, p.Analysis.Failures)
	}
}

func TestParsePlanErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"syntax", "ruleKey: [", "line 1"},
		{"empty", "", "empty document"},
		{"unknown key", "ruleKey: k\nservise: [a]\n", "line 2, column 1: servise: unknown key"},
		{"unknown analysis key", strings.Replace(testPlan, "maxErrorRate:", "maxErrRate:", 1), "line 9, column 3: analysis/maxErrRate: unknown key"},
		{"step not a number", strings.Replace(testPlan, "[1, 5,", "[1, five,", 1), "line 5, column 12: steps[2]: step \"five\""},
		{"steps fall", strings.Replace(testPlan, "[1, 5, 25,", "[1, 25, 5,", 1), "line 5, column 16: steps[3]: step 5 must be above"},
		{"last not 100", strings.Replace(testPlan, "50, 100]", "50]", 1), "steps[4]: the last step is 50"},
		{"bad hold", strings.Replace(testPlan, "hold: 1m", "hold: soon", 1), "line 6, column 7: hold: \"soon\" is not a duration"},
		{"ratio below 1", strings.Replace(testPlan, "maxP99Ratio: 1.5", "maxP99Ratio: 0.5", 1), "line 10, column 16: analysis/maxP99Ratio: ratio 0.5 below 1"},
		{"rate above 1", strings.Replace(testPlan, "maxErrorRate: 0.01", "maxErrorRate: 5", 1), "analysis/maxErrorRate: an error rate is from 0 to 1"},
		{"no threshold", "ruleKey: k\nservices: [a]\nnew: newest\nsteps: [100]\nhold: 1m\nanalysis: {minRequests: 5}\n", "line 6, column 11: analysis: no threshold"},
		{"duplicate service", strings.Replace(testPlan, "[svc-a, svc-b]", "[svc-a, svc-a]", 1), "line 3, column 19: services[2]: duplicate service"},
		{"same versions", strings.Replace(testPlan, "new: newest", "new: oldest", 1), "new: the new version cannot be the oldest"},
		{"missing rule key", strings.Replace(testPlan, "ruleKey: shop-shop", "", 1), "ruleKey: missing rule key"},
		{"not a mapping", "- a\n", "must be a mapping"},
		{"negative maxInconclusive", strings.Replace(testPlan, "failures: 1", "failures: 1\n  maxInconclusive: -1", 1), "line 12, column 20: analysis/maxInconclusive: negative count"},
		{"maxInconclusive not a number", strings.Replace(testPlan, "failures: 1", "failures: 1\n  maxInconclusive: three", 1), "line 12, column 20: analysis/maxInconclusive: \"three\" is not a whole number"},
		{"maxInconclusive not whole", strings.Replace(testPlan, "failures: 1", "failures: 1\n  maxInconclusive: 2.5", 1), "line 12, column 20: analysis/maxInconclusive: \"2.5\" is not a whole number"},
		{"maxInconclusive a list", strings.Replace(testPlan, "failures: 1", "failures: 1\n  maxInconclusive: [3]", 1), "line 12, column 20: analysis/maxInconclusive: \"\" is not a whole number"},
		{"negative failures", strings.Replace(testPlan, "failures: 1", "failures: -2", 1), "line 11, column 13: analysis/failures: negative count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, rule.ErrInvalid) && !errors.Is(err, rule.ErrSyntax) {
				t.Errorf("error %v wraps neither ErrInvalid nor ErrSyntax", err)
			}
		})
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(testPlan))
	f.Add([]byte("ruleKey: k\nservices: [a]\nnew: \"1.1\"\nold: \"1.0\"\nsteps: [50, 100]\nhold: 1s\nanalysis: {maxP99: 1s}\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("ruleKey: k\nservices: [a]\nnew: newest\nsteps: [100]\nhold: 1s\nanalysis: {maxErrorRate: 0.1, maxInconclusive: 2}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err != nil {
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *PlanError", err, err)
			}
			return
		}
		if err := p.Check(); err != nil {
			t.Fatalf("a parsed plan fails Check: %v", err)
		}
		if p.Steps[len(p.Steps)-1] != 100 || p.Hold <= 0 || p.Analysis.Failures < 1 || p.Analysis.MaxInconclusive < 1 {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func TestJudge(t *testing.T) {
	a := Analysis{MinRequests: 100, MaxErrorRate: 0.02, MaxErrorRatio: 2, MaxP99: 500 * time.Millisecond, MaxP99Ratio: 1.5}
	ms := time.Millisecond
	tests := []struct {
		name     string
		a        Analysis
		nw, old  Figure
		want     Outcome
		contains string
	}{
		{"healthy", a, Figure{1000, 5, 100 * ms}, Figure{9000, 40, 90 * ms}, Pass, ""},
		{"too few", a, Figure{99, 50, 900 * ms}, Figure{9000, 0, 90 * ms}, Inconclusive, "99 requests"},
		{"absolute error rate", a, Figure{1000, 30, 100 * ms}, Figure{9000, 900, 90 * ms}, Fail, "error rate 3.000% above the maximum"},
		{"error ratio", a, Figure{1000, 15, 100 * ms}, Figure{9000, 45, 90 * ms}, Fail, "above 2 times the old version's 0.500%"},
		// The old version had no errors; the absolute threshold decides.
		{"old clean, within absolute", a, Figure{1000, 5, 100 * ms}, Figure{9000, 0, 90 * ms}, Pass, ""},
		{"old clean, ratio only", Analysis{MaxErrorRatio: 2}, Figure{1000, 1, 100 * ms}, Figure{9000, 0, 90 * ms}, Fail, "above 2 times"},
		{"absolute p99", a, Figure{1000, 0, 600 * ms}, Figure{9000, 0, 590 * ms}, Fail, "p99 600ms above the maximum 500ms"},
		{"p99 ratio", a, Figure{1000, 0, 200 * ms}, Figure{9000, 0, 100 * ms}, Fail, "p99 200ms above 1.5 times the old version's 100ms"},
		{"no old traffic, ratio skipped", a, Figure{1000, 0, 200 * ms}, Figure{}, Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Judge(tt.a, tt.nw, tt.old)
			if got != tt.want || !strings.Contains(why, tt.contains) {
				t.Fatalf("Judge = %s %q, want %s containing %q", got, why, tt.want, tt.contains)
			}
		})
	}
}

func TestRecorderWindow(t *testing.T) {
	r := NewRecorder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		r.Record("a", "1.1", t0.Add(time.Duration(i)*time.Second), time.Duration(i+1)*time.Millisecond, i%10 == 0)
	}
	f, _ := r.Query(t.Context(), "a", "1.1", t0.Add(99*time.Second), 50*time.Second)
	// (49s, 99s]: samples 50..99; failures at 50,60,...,90.
	if f.Requests != 50 || f.Errors != 5 || f.P99 != 100*time.Millisecond {
		t.Errorf("%+v", f)
	}
	r.Forget(t0.Add(90 * time.Second))
	if f, _ = r.Query(t.Context(), "a", "1.1", t0.Add(99*time.Second), time.Hour); f.Requests != 10 {
		t.Errorf("after Forget: %+v", f)
	}
}

func TestExposure(t *testing.T) {
	p, err := ParsePlan([]byte(strings.Replace(testPlan, "failures: 1", "failures: 2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give      int
		wantShare int
		wantD     time.Duration
	}{
		{0, 1, 2 * time.Minute},
		{2, 25, 2 * time.Minute},
		{4, 100, 2 * time.Minute},
		{5, 0, 0},
		{-1, 0, 0},
	}
	for _, tt := range tests {
		if share, d := p.Exposure(tt.give); share != tt.wantShare || d != tt.wantD {
			t.Errorf("Exposure(%d) = %d%%, %v; want %d%%, %v", tt.give, share, d, tt.wantShare, tt.wantD)
		}
	}
	// A plan built in code and not yet checked counts one failure.
	q := &Plan{Steps: []int{10, 100}, Hold: time.Minute}
	if share, d := q.Exposure(0); share != 10 || d != time.Minute {
		t.Errorf("unchecked plan: %d%%, %v", share, d)
	}
}

func ExamplePlan_Exposure() {
	p, err := ParsePlan([]byte(`
ruleKey: shop-shop
services: [svc-a, svc-b]
new: newest
steps: [1, 10, 50, 100]
hold: 5m
analysis: {minRequests: 200, maxErrorRate: 0.01, failures: 2}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.Steps {
		share, d := p.Exposure(i)
		fmt.Printf("step %d: a bad version draws %d%% of the requests for at most %v\n", i+1, share, d)
	}
	// Output:
	// step 1: a bad version draws 1% of the requests for at most 10m0s
	// step 2: a bad version draws 10% of the requests for at most 10m0s
	// step 3: a bad version draws 50% of the requests for at most 10m0s
	// step 4: a bad version draws 100% of the requests for at most 10m0s
}
