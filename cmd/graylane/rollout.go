package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/lease"
	"github.com/graylane/graylane/rollout"
)

const rolloutArgs = "start|status|pause|resume|abort|promote [flags]"

// runRollout is "graylane rollout SUBCOMMAND": start (and run) a rollout
// of a plan, or act on the one in progress at -key.
func runRollout(e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		e.errorf("rollout", "want a subcommand: start, status, pause, resume, abort or promote")
		return exitUsage
	}
	sub, args := args[0], args[1:]
	usage := map[string]string{
		"start":   "(-plan FILE | -key KEY) -prometheus URL [-metric server|client] [-consul ADDR] [-check-ttl D] [-session-ttl D]",
		"status":  "-key KEY [-consul ADDR]",
		"pause":   "-key KEY [-reason TEXT] [-consul ADDR]",
		"resume":  "-key KEY [-consul ADDR]",
		"abort":   "-key KEY [-reason TEXT] [-consul ADDR]",
		"promote": "-key KEY [-reason TEXT] [-consul ADDR]",
	}[sub]
	if usage == "" {
		e.errorf("rollout", "unknown subcommand %q (want start, status, pause, resume, abort or promote)", sub)
		return exitUsage
	}
	name := "rollout " + sub
	fs := newFlags(name, usage, e.stderr)
	key := fs.String("key", "", "the rule `KEY` of the rollout (its spec is at graylane/spec/KEY)")
	reason := fs.String("reason", "by hand", "why, recorded in the rollout's state")
	planFile := fs.String("plan", "", "the plan `FILE` (start; \"-\" reads standard input)")
	prom := fs.String("prometheus", "", "the Prometheus server's `URL` the figures are queried from (start)")
	metric := fs.String("metric", "server", "which side's request histograms to judge: server or client (start)")
	checkTTL := fs.Duration("check-ttl", lease.DefaultCheckTTL, "TTL of the health check the lock session depends on: a dead or stalled controller's lock is freed this long after its last feed (1s up to -session-ttl)")
	ttl := fs.Duration("session-ttl", lease.DefaultSessionTTL, "TTL of the lock session, a backstop behind -check-ttl: freed 1-2 TTLs after its last renewal (10s to 24h)")
	cf := addConsulFlags(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		e.errorf(name, "unexpected arguments %q", pos)
		return exitUsage
	}
	var planDoc []byte
	if *planFile != "" {
		if sub != "start" {
			e.errorf(name, "-plan is for start only")
			return exitUsage
		}
		var err error
		if planDoc, err = e.readInput(*planFile); err != nil {
			e.errorf(name, "%v", err)
			return exitFailed
		}
		plan, err := rollout.ParsePlan(planDoc)
		if err != nil {
			e.errorf(name, "%s: %v", displayName(*planFile), err)
			return exitFailed
		}
		if *key != "" && *key != plan.RuleKey {
			e.errorf(name, "-key %s differs from the plan's rule key %s", *key, plan.RuleKey)
			return exitUsage
		}
		*key = plan.RuleKey
	}
	if *key == "" {
		e.errorf(name, "want -key KEY%s", map[bool]string{true: " or -plan FILE"}[sub == "start"])
		return exitUsage
	}
	cl, where, err := cf.client()
	if err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(e.stderr), zapcore.InfoLevel))
	defer func() { _ = log.Sync() }()
	host, _ := os.Hostname()
	store, err := rollout.NewConsulStore(cl, *key, host+":"+strconv.Itoa(os.Getpid()), *ttl,
		rollout.WithCheckTTL(*checkTTL), rollout.WithLockLogger(log))
	if err != nil {
		e.errorf(name, "%v", err)
		return exitUsage
	}
	ctx, cancel := cf.context()
	defer cancel()
	if err := reachable(ctx, cl, where); err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	reg := discovery.NewConsul(cl)
	defer reg.Close()
	switch sub {
	case "status":
		st, plan, err := rollout.Status(ctx, store)
		if err != nil {
			if st != nil { // the plan does not parse: show the state
				printPlanError(e.stdout, *key, rollout.PlanErrorView(st, err))
			}
			e.errorf(name, "%v", err)
			return exitFailed
		}
		printStatus(e.stdout, *key, st, plan, time.Now())
		return exitOK
	case "pause":
		err = rollout.Pause(ctx, store, time.Now(), *reason)
	case "resume":
		err = rollout.Resume(ctx, store, time.Now())
	case "abort":
		err = rollout.Abort(ctx, store, reg, *reason)
	case "promote":
		err = rollout.Promote(ctx, store, reg, *reason)
	case "start":
		return startRollout(e, log, store, reg, *key, planDoc, *prom, *metric)
	}
	if err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	st, plan, err := rollout.Status(ctx, store)
	if err == nil {
		printStatus(e.stdout, *key, st, plan, time.Now())
	}
	return exitOK
}

// startRollout records the plan (when given), prints its exposure bound
// and runs the controller until the rollout is done or the command is
// interrupted.
func startRollout(e *env, log *zap.Logger, store *rollout.ConsulStore, reg discovery.Registry, key string, planDoc []byte, prom, metric string) int {
	const name = "rollout start"
	if prom == "" {
		e.errorf(name, "want -prometheus URL: the figures the steps are judged on")
		return exitUsage
	}
	m := map[string]string{"server": rollout.ServerMetric, "client": rollout.ClientMetric}[metric]
	if m == "" {
		e.errorf(name, "-metric %q: want server or client", metric)
		return exitUsage
	}
	figures, err := rollout.NewPrometheus(prom, m)
	if err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	ctx := e.context()
	if planDoc != nil {
		if _, err := rollout.Start(ctx, store, reg, planDoc); err != nil {
			e.errorf(name, "%v", err)
			return exitFailed
		}
	}
	// The rollout this controller carries on, or takes over as a standby.
	if st, plan, err := rollout.Status(ctx, store); err == nil && st != nil && !st.Phase.Done() {
		fmt.Fprintln(e.stdout, exposure(plan))
	}
	ctl, err := rollout.NewController(store, reg, figures, rollout.WithLogger(log),
		rollout.WithEvents(func(ev rollout.Event) { fmt.Fprintln(e.stdout, ev) }))
	if err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	if err := ctl.Run(ctx); err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, plan, err := rollout.Status(sctx, store)
	if err != nil {
		e.errorf(name, "%v", err)
		return exitFailed
	}
	printStatus(e.stdout, key, st, plan, time.Now())
	if st != nil && (st.Phase == rollout.RolledBack || st.Phase == rollout.Aborted) {
		return exitFailed
	}
	return exitOK
}

// exposure says in one line what Plan.Exposure bounds at each step, in
// the terms its documentation guarantees: while every window has
// MinRequests, a new version that fails its checks has about the step's
// share of the requests for at most d at the step it fails at (having
// passed the earlier ones); thin windows stretch a step to MaxInconclusive
// times d, then it rolls back or pauses at its share.
func exposure(plan *rollout.Plan) string {
	steps := make([]string, len(plan.Steps))
	for i := range plan.Steps {
		share, d := plan.Exposure(i)
		format := "%d%% for at most %v at step %d"
		if i == 0 {
			format = "about %d%% of requests for at most %v at step %d"
		}
		steps[i] = fmt.Sprintf(format, share, d, i+1)
	}
	a := plan.Analysis
	inconclusive := max(a.MaxInconclusive, 1)
	return fmt.Sprintf("exposure: while every check's window has at least %d requests, a new version that fails its checks is rolled back"+
		" within the bound of the step it fails at (after the earlier steps, which passed): %s, plus the check itself and the rule's propagation;"+
		" thinner windows stretch a step to %d× that (%d inconclusive checks in a row), then it rolls back, or pauses keeping its share until a person acts",
		max(a.MinRequests, 1), strings.Join(steps, ", "), inconclusive, inconclusive)
}

// printStatus shows the plan, the step, what comes next and the latest
// checks with their figures (the rollout's View).
func printStatus(w io.Writer, key string, st *rollout.State, plan *rollout.Plan, now time.Time) {
	if st == nil {
		fmt.Fprintf(w, "no rollout at %s\n", key)
		return
	}
	v := rollout.NewView(st, plan, now)
	fmt.Fprintf(w, "rollout of %s: %s\n", v.RuleKey, v.Phase)
	names := make([]string, len(v.Plan.Services))
	for i, s := range v.Plan.Services {
		names[i] = s.Name
	}
	fmt.Fprintf(w, "  services  %s\n", strings.Join(names, ", "))
	for _, s := range v.Plan.Services {
		fmt.Fprintf(w, "  %-9s %s -> %s", s.Name, s.Old, s.New)
		if s.Drained != nil {
			fmt.Fprintf(w, " (old drained: %v)", *s.Drained)
		}
		fmt.Fprintln(w)
	}
	steps := make([]string, len(v.Plan.Steps))
	for i, s := range v.Plan.Steps {
		steps[i] = strconv.Itoa(s) + "%"
		if i == v.Step-1 && !v.Phase.Done() {
			steps[i] = "[" + steps[i] + "]"
		}
	}
	fmt.Fprintf(w, "  steps     %s, hold %s; new version now at %d%%", strings.Join(steps, " "), v.Plan.Hold, v.Share)
	if v.Step > 0 && !v.Phase.Done() {
		fmt.Fprintf(w, " (step %d/%d since %s)", v.Step, v.Steps, v.StepStart.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  analysis  over %s: %s\n", v.Plan.Window, strings.Join(v.Plan.Thresholds, ", "))
	if v.Exposure != "" {
		fmt.Fprintf(w, "  exposure  %s\n", v.Exposure)
	}
	if v.Reason != "" {
		fmt.Fprintf(w, "  reason    %s\n", v.Reason)
	}
	fmt.Fprintf(w, "  next      %s", v.Next.Text)
	if !v.Next.At.IsZero() && v.Next.At.After(now) {
		fmt.Fprintf(w, " (in %v)", v.Next.At.Sub(now).Round(time.Second))
	}
	if v.Next.Action == "step" {
		fmt.Fprintf(w, " (when a controller runs: graylane rollout start -key %s)", v.RuleKey)
	}
	fmt.Fprintln(w)
	for _, c := range v.Checks {
		fmt.Fprintf(w, "  check     %s step %d %s: new %s / old %s: %s", c.At.Format(time.RFC3339), c.Step, c.Service, figure(c.New), figure(c.Old), c.Outcome)
		if c.Reason != "" {
			fmt.Fprintf(w, " (%s)", c.Reason)
		}
		fmt.Fprintln(w)
	}
}

// printPlanError shows a rollout whose plan does not parse: what its
// state alone tells (rollout.PlanErrorView) and the error.
func printPlanError(w io.Writer, key string, v *rollout.View) {
	fmt.Fprintf(w, "rollout of %s: %s\n", key, v.Phase)
	fmt.Fprintf(w, "  plan      does not parse: %s\n", v.PlanError)
	share := "unknown"
	if v.Share >= 0 {
		share = strconv.Itoa(v.Share) + "%"
	}
	fmt.Fprintf(w, "  step      %d; new version now at %s", v.Step, share)
	if v.Step > 0 && !v.Phase.Done() {
		fmt.Fprintf(w, " (since %s)", v.StepStart.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if v.Reason != "" {
		fmt.Fprintf(w, "  reason    %s\n", v.Reason)
	}
	fmt.Fprintf(w, "  next      %s\n", v.Next.Text)
	for _, c := range v.Checks {
		fmt.Fprintf(w, "  check     %s step %d %s: new %s / old %s: %s", c.At.Format(time.RFC3339), c.Step, c.Service, figure(c.New), figure(c.Old), c.Outcome)
		if c.Reason != "" {
			fmt.Fprintf(w, " (%s)", c.Reason)
		}
		fmt.Fprintln(w)
	}
}

// figure formats a check's figure as rollout.Figure's String does.
func figure(f rollout.ViewFigure) string {
	return fmt.Sprintf("%.0f req, %.2f%% err, p99 %s", f.Requests, 100*f.ErrorRate, f.P99)
}
