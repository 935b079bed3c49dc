package rollout

import (
	"testing"
	"time"
)

// BenchmarkRecorderRecord is the in-process figures' cost per served
// request.
func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Record("svc-a", "1.1", t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond, i%50 == 0)
		i++
	}
}

// BenchmarkRecorderQuery reads a window of 9,999 requests among 100,000
// (the window excludes its start: (90s, 100s], the last sample at 99.999s).
func BenchmarkRecorderQuery(b *testing.B) {
	r := NewRecorder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100000 {
		r.Record("svc-a", "1.1", t0.Add(time.Duration(i)*time.Millisecond), time.Duration(i%997)*time.Microsecond, i%50 == 0)
	}
	end := t0.Add(100 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := r.Query(b.Context(), "svc-a", "1.1", end, 10*time.Second); f.Requests != 9999 {
			b.Fatal(f)
		}
	}
}

// BenchmarkJudge is one service's verdict.
func BenchmarkJudge(b *testing.B) {
	a := Analysis{MinRequests: 100, MaxErrorRate: 0.02, MaxErrorRatio: 2, MaxP99: time.Second, MaxP99Ratio: 1.5}
	nw, old := Figure{1000, 5, 100 * time.Millisecond}, Figure{9000, 40, 90 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := Judge(a, nw, old); o != Pass {
			b.Fatal(o)
		}
	}
}

// BenchmarkParsePlan reads the test plan.
func BenchmarkParsePlan(b *testing.B) {
	doc := []byte(testPlan)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePlan(doc); err != nil {
			b.Fatal(err)
		}
	}
}
