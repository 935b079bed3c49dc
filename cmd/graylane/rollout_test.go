package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rollout"
)

func TestRolloutUsage(t *testing.T) {
	tests := []struct {
		give []string
		want int
		text string
	}{
		{[]string{"rollout"}, exitUsage, "want a subcommand"},
		{[]string{"rollout", "go"}, exitUsage, `unknown subcommand "go"`},
		{[]string{"rollout", "status"}, exitUsage, "want -key KEY"},
		{[]string{"rollout", "start"}, exitUsage, "want -key KEY or -plan FILE"},
		{[]string{"rollout", "pause", "-plan", "x"}, exitUsage, "-plan is for start only"},
		{[]string{"rollout", "start", "-plan", "testdata/missing.yaml"}, exitFailed, "no such file"},
		{[]string{"rollout", "start", "-plan", "-"}, exitFailed, "<stdin>: rollout plan: line 1, column 1: ruleKey: missing rule key"},
		// The lock's TTLs are checked before Consul is reached.
		{[]string{"rollout", "status", "-key", "k", "-consul", "127.0.0.1:1", "-session-ttl", "1s"}, exitUsage, "session TTL 1s: Consul accepts 10s to 24h"},
		{[]string{"rollout", "start", "-key", "k", "-consul", "127.0.0.1:1", "-check-ttl", "500ms"}, exitUsage, "check TTL 500ms: want at least 1s"},
		{[]string{"rollout", "start", "-key", "k", "-consul", "127.0.0.1:1", "-check-ttl", "20s"}, exitUsage, "at most the session TTL (15s)"},
		{[]string{"rollout", "start", "-key", "k", "-consul", "127.0.0.1:1", "-check-ttl", "20s", "-session-ttl", "10s"}, exitUsage, "at most the session TTL (10s)"},
		{[]string{"rollout", "start", "-h"}, exitOK, "-check-ttl D] [-session-ttl D]"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			code, out, errOut := call(t, "steps: [1]\n", tt.give...)
			if code != tt.want || !strings.Contains(out+errOut, tt.text) {
				t.Errorf("exit %d (want %d), output lacks %q?\nstdout: %s\nstderr: %s", code, tt.want, tt.text, out, errOut)
			}
		})
	}
}

// fakePrometheus answers Prometheus' query API: requests, failed requests
// and p99 seconds for every query.
func fakePrometheus(t *testing.T, failed *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		q := r.Form.Get("query")
		v := "1000"
		switch {
		case strings.HasPrefix(q, "histogram_quantile"):
			v = "0.01"
		case strings.Contains(q, "error_type"):
			v = fmt.Sprint(failed.Load())
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"%s"]}]}}`, v)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRolloutCommand(t *testing.T) {
	a := consultest.Start(t)
	addr := a.HTTPAddr()
	register(t, a, "svc-a", "1.0", 9001)
	register(t, a, "svc-a", "1.1", 9002)
	register(t, a, "svc-b", "1.0", 9003)
	register(t, a, "svc-b", "1.1", 9004)
	var failed atomic.Int64
	prom := fakePrometheus(t, &failed)
	spec := "service: [svc-a, svc-b]\ngray:\n  - {weight: [100, 0]}\n"
	if code, out, errOut := call(t, spec, "publish", "-key", "shop-shop", "-consul", addr, "-"); code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	plan := "ruleKey: shop-shop\nservices: [svc-a, svc-b]\nnew: newest\nsteps: [50, 100]\nhold: 200ms\n" +
		"analysis: {minRequests: 100, maxErrorRate: 0.01}\n"

	code, out, errOut := call(t, plan, "rollout", "start", "-plan", "-", "-prometheus", prom, "-consul", addr)
	if code != exitOK {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	exp := "exposure: while every check's window has at least 100 requests, a new version that fails its checks is rolled back within the bound of the step it fails at" +
		" (after the earlier steps, which passed): about 50% of requests for at most 200ms at step 1, 100% for at most 200ms at step 2, plus the check itself and the rule's propagation;" +
		" thinner windows stretch a step to 3× that (3 inconclusive checks in a row), then it rolls back, or pauses keeping its share until a person acts\n"
	if i, j := strings.Index(out, exp), strings.Index(out, "step 1/2"); i < 0 || j < i {
		t.Errorf("start output lacks %q before the first step:\n%s", exp, out)
	}
	for _, want := range []string{"step 1/2  50%  step", "step 2/2 100%  step", "svc-b new 1000 req, 0.00% err, p99 10ms", ": pass",
		"promote", "rollout of shop-shop: promoted", "svc-a     1.0 -> 1.1 (old drained: true)"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = call(t, "", "rollout", "pause", "-key", "shop-shop", "-consul", addr)
	if code != exitFailed || !strings.Contains(errOut, "not allowed in this phase: promoted") {
		t.Errorf("pause after promotion: exit %d\n%s%s", code, out, errOut)
	}

	// A new rollout on a version failing 5% of its requests: rolled back
	// at the first step.
	failed.Store(50)
	code, out, errOut = call(t, plan, "rollout", "start", "-plan", "-", "-prometheus", prom, "-consul", addr)
	if code != exitFailed || !strings.Contains(out, "rollout of shop-shop: rolled-back") || !strings.Contains(out, "error rate 5.000% above the maximum 1.000%") {
		t.Errorf("failing rollout: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = call(t, "", "rollout", "status", "-key", "shop-shop", "-consul", addr)
	if code != exitOK || !strings.Contains(out, "new version now at 0%") || !strings.Contains(out, "step 1 svc-a: new 1000 req, 5.00% err") ||
		!strings.Contains(out, "next      done: rolled back (svc-a: error rate 5.000% above the maximum 1.000%)") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, errOut = call(t, "", "rollout", "status", "-key", "other", "-consul", addr)
	if code != exitOK || !strings.Contains(out, "no rollout at other") {
		t.Errorf("status of none: exit %d\n%s%s", code, out, errOut)
	}
	// A standby with nothing to carry on says so and stops.
	code, out, errOut = call(t, "", "rollout", "start", "-key", "other", "-prometheus", prom, "-consul", addr)
	if code != exitOK || !strings.Contains(out, "no rollout at other") || strings.Contains(out, "exposure:") {
		t.Errorf("standby without a rollout: exit %d\n%s%s", code, out, errOut)
	}
}

// TestRolloutLockLogged: the lock's failures that the controller does not
// see as errors (here feeding the check of its session, the agent gone)
// reach the command's log.
func TestRolloutLockLogged(t *testing.T) {
	a := consultest.Start(t)
	addr := a.HTTPAddr()
	register(t, a, "svc-a", "1.0", 9001)
	register(t, a, "svc-a", "1.1", 9002)
	var failed atomic.Int64
	prom := fakePrometheus(t, &failed)
	if code, out, errOut := call(t, "service: [svc-a]\ngray:\n  - {weight: [100, 0]}\n", "publish", "-key", "svc-a-r", "-consul", addr, "-"); code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	plan := "ruleKey: svc-a-r\nservices: [svc-a]\nnew: newest\nsteps: [50, 100]\nhold: 1h\nanalysis: {minRequests: 100, maxErrorRate: 0.01}\n"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&env{stdin: strings.NewReader(plan), stdout: &stdout, stderr: &stderr, ctx: ctx},
			[]string{"rollout", "start", "-plan", "-", "-prometheus", prom, "-consul", addr, "-session-ttl", "10s"})
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Since(start) > 60*time.Second {
				t.Fatalf("%s: not within 60s\nstdout: %s\nstderr: %s", what, stdout.String(), stderr.String())
			}
		}
	}
	wait("step 1 written", func() bool { return strings.Contains(stdout.String(), "step 1/2") })
	a.Kill(t)
	wait("the failed feed logged", func() bool { return strings.Contains(stderr.String(), "lease: feeding the check failed") })
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("rollout start did not stop")
	}
}

// TestPrintStatus shows a running and a paused rollout as status prints
// them: the plan, the step, what comes next and when, the checks' figures.
func TestPrintStatus(t *testing.T) {
	plan, err := rollout.ParsePlan([]byte("ruleKey: shop-shop\nservices: [svc-a, svc-b]\nnew: newest\nsteps: [5, 50, 100]\nhold: 5m\n" +
		"analysis: {minRequests: 100, maxErrorRate: 0.01, failures: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := &rollout.State{Phase: rollout.Running, Step: 1, StepStart: t0, Next: t0.Add(5 * time.Minute), Failures: 1, Inconclusive: 1,
		Versions: map[string][2]string{"svc-a": {"1.0", "1.1"}, "svc-b": {"1.0", "1.1"}},
		Checks: []rollout.Check{{Service: "svc-b", Step: 0, At: t0, Outcome: rollout.Fail, Reason: "error rate 2.000% above the maximum 1.000%",
			New: rollout.Figure{Requests: 500, Errors: 10, P99: 12 * time.Millisecond}, Old: rollout.Figure{Requests: 9500, P99: 11 * time.Millisecond}}}}
	var b bytes.Buffer
	printStatus(&b, "shop-shop", st, plan, t0.Add(3*time.Minute))
	want := `rollout of shop-shop: running
  services  svc-a, svc-b
  svc-a     1.0 -> 1.1
  svc-b     1.0 -> 1.1
  steps     5% [50%] 100%, hold 5m0s; new version now at 50% (step 2/3 since 2026-03-01T10:00:00Z)
  analysis  over 5m0s: at least 100 requests to the new version, error rate at most 1%, 2 failed checks in a row roll back, 3 inconclusive checks in a row pause
  exposure  about 50% of requests; rolled back within 10m0s of running at this step while every window has at least 100 requests (thin windows: the step lasts at most 30m0s, then rolls back or pauses)
  next      check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 100%; a failed check rolls back; 2 more inconclusive checks in a row pause (in 2m0s)
  check     2026-03-01T10:00:00Z step 1 svc-b: new 500 req, 2.00% err, p99 12ms / old 9500 req, 0.00% err, p99 11ms: fail (error rate 2.000% above the maximum 1.000%)
`
	if b.String() != want {
		t.Errorf("running:\n%s\nwant\n%s", b.String(), want)
	}
	st.Phase, st.Reason, st.Left, st.Next = rollout.Paused, "the spec was edited by someone else (index 7)", 2*time.Minute, time.Time{}
	b.Reset()
	printStatus(&b, "shop-shop", st, plan, t0.Add(3*time.Minute))
	for _, line := range []string{
		"rollout of shop-shop: paused\n",
		"  reason    the spec was edited by someone else (index 7)\n",
		"  next      paused: the spec was edited by someone else (index 7); waiting for resume (graylane rollout resume), then step 2 holds for the 2m0s it had left\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("paused: lacks %q:\n%s", line, b.String())
		}
	}
	st.Phase, st.Step, st.Reason, st.Checks = rollout.Running, -1, "", nil
	b.Reset()
	printStatus(&b, "shop-shop", st, plan, t0)
	if want := "  next      write step 1 (5%) now (when a controller runs: graylane rollout start -key shop-shop)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("not started: lacks %q:\n%s", want, b.String())
	}
}

// TestPrintPlanError shows a rollout whose state's plan does not parse as
// status prints it: phase, step, share when known, reason, checks and the
// error.
func TestPrintPlanError(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		st   rollout.State
		want []string
	}{
		{"running", rollout.State{Plan: "steps: [", Phase: rollout.Running, Step: 1, StepStart: t0, Reason: "",
			Checks: []rollout.Check{{Service: "svc-b", Step: 1, At: t0, Outcome: rollout.Fail, Reason: "too many errors"}}}, []string{
			"rollout of shop-shop: running\n",
			"  plan      does not parse: bad plan\n",
			"  step      2; new version now at unknown (since 2026-03-01T10:00:00Z)\n",
			"  next      unknown: the state's plan does not parse\n",
			"step 2 svc-b: new 0 req, 0.00% err, p99 0s / old 0 req, 0.00% err, p99 0s: fail (too many errors)\n",
		}},
		{"paused", rollout.State{Plan: "steps: [", Phase: rollout.Paused, Step: 0, Reason: "by hand"}, []string{
			"rollout of shop-shop: paused\n",
			"  step      1; new version now at unknown",
			"  reason    by hand\n",
			"  next      paused: by hand; waiting for resume",
		}},
		{"rolled back", rollout.State{Plan: "steps: [", Phase: rollout.RolledBack, Step: 1, Reason: "svc-b failed"}, []string{
			"  step      2; new version now at 0%\n",
			"  reason    svc-b failed\n",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printPlanError(&b, "shop-shop", rollout.PlanErrorView(&tt.st, errors.New("bad plan")))
			for _, line := range tt.want {
				if !strings.Contains(b.String(), line) {
					t.Errorf("lacks %q:\n%s", line, b.String())
				}
			}
		})
	}
}
