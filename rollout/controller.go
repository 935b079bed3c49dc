package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/drain"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/lease"
	"github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// Phase is where a rollout is.
type Phase string

// The phases of a rollout.
const (
	// Running: stepping; the controller acts at State.Next.
	Running Phase = "running"
	// Paused: waiting for resume (a person's edit, pause, or too many
	// inconclusive checks in a row); the step's remaining hold is kept in
	// State.Left.
	Paused Phase = "paused"
	// Promoted: the new version has 100 percent; the old one is drained.
	Promoted Phase = "promoted"
	// RolledBack: a check failed; the new version has 0 percent.
	RolledBack Phase = "rolled-back"
	// Aborted: a person aborted it; the new version has 0 percent.
	Aborted Phase = "aborted"
)

// Done reports whether the phase is final.
func (p Phase) Done() bool { return p == Promoted || p == RolledBack || p == Aborted }

// maxChecks is how many checks State keeps.
const maxChecks = 50

// State is a rollout's state, kept in KV so that any controller can carry
// it on.
type State struct {
	// Plan is the plan document the rollout started with.
	Plan string `json:"plan"`
	// Versions are the resolved [old, new] versions per service.
	Versions map[string][2]string `json:"versions"`
	Phase    Phase                `json:"phase"`
	// Step indexes the plan's steps; -1 before the first is written.
	Step int `json:"step"`
	// StepStart is when the current step's weights were written.
	StepStart time.Time `json:"stepStart"`
	// Next is when the controller acts next (Running only).
	Next time.Time `json:"next"`
	// Left is the remaining hold of a paused step.
	Left time.Duration `json:"left,omitempty"`
	// Failures counts failed checks in a row (an inconclusive check
	// between two neither counts nor breaks the run; a pass resets it).
	Failures int `json:"failures"`
	// Inconclusive counts inconclusive checks in a row at the current
	// step; at the plan's Analysis.MaxInconclusive the rollout pauses. A
	// pass, a fail, a new step and Resume reset it.
	Inconclusive int `json:"inconclusive"`
	// Checks are the latest checks, oldest first.
	Checks []Check `json:"checks,omitempty"`
	// Reason says why the rollout paused, rolled back, was aborted or
	// promoted.
	Reason string `json:"reason,omitempty"`
	// Spec is the spec document the controller last wrote: a spec that
	// differs from it was edited by someone else.
	Spec string `json:"spec"`
	// Drained reports, after promotion, per service whether the drain gate
	// sees the old version drained under the rule written.
	Drained map[string]bool `json:"drained,omitempty"`
}

// Share returns the new version's current share in percent.
func (s *State) Share(p *Plan) int {
	switch {
	case s.Phase == Promoted:
		return 100
	case s.Phase == RolledBack || s.Phase == Aborted || s.Step < 0:
		return 0
	}
	return p.Steps[min(s.Step, len(p.Steps)-1)]
}

// Clock is the time source of a Controller.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Event is one thing a controller did, for progress views.
type Event struct {
	At     time.Time
	Step   int // index into the plan's steps
	Steps  int // how many steps the plan has
	Share  int // the new version's share after the event, percent
	Phase  Phase
	Checks []Check // the checks of this event, if it checked
	// Action is "step", "check", "promote", "rollback", "pause".
	Action string
	Reason string
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock sets the clock (default: the wall clock).
func WithClock(c Clock) Option { return func(k *Controller) { k.clock = c } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(k *Controller) { k.log = l } }

// WithEvents calls fn with each event, from the controller's goroutine.
func WithEvents(fn func(Event)) Option { return func(k *Controller) { k.events = fn } }

// WithPoll sets how often Run reads the state while waiting, to see a
// pause, resume, abort or promote written by a command (default 1s).
func WithPoll(d time.Duration) Option { return func(k *Controller) { k.poll = d } }

// Controller drives one rollout: it writes each step's weights into the
// spec (and its rendering), checks the figures after each hold, and
// promotes or rolls back. See the package documentation.
type Controller struct {
	store   Store
	reg     discovery.Registry
	figures Figures
	clock   Clock
	log     *zap.Logger
	events  func(Event)
	poll    time.Duration
}

// NewController returns a controller of the rollout in store, reading live
// versions from reg and figures from figures.
func NewController(store Store, reg discovery.Registry, figures Figures, opts ...Option) (*Controller, error) {
	if store == nil || reg == nil || figures == nil {
		return nil, errors.New("rollout: NewController needs a store, a registry and figures")
	}
	k := &Controller{store: store, reg: reg, figures: figures, clock: realClock{}, log: zap.NewNop(), poll: time.Second}
	for _, o := range opts {
		o(k)
	}
	return k, nil
}

// Run holds the rollout's lock and acts at each State.Next until the
// rollout is done or ctx ends. A controller that takes over from another
// carries on the same step with its remaining hold. Figures or Consul
// failing during a term are logged and tried again at the next poll; a
// lock lost hands over and waits for it again. A failed attempt at the
// lock (its Consul agent restarting, say, or a session Consul refuses) is
// logged and tried again after a backoff (1s, doubling up to 30s), as
// graylane orchestrate does, so that neither the holder nor a standby
// gives up the rollout over an agent that is briefly away.
func (k *Controller) Run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		hctx, release, err := k.store.Hold(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			wait := lease.Backoff(failures)
			k.log.Warn("rollout: lock attempt failed; trying again", zap.Duration("in", wait), zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-k.clock.After(wait):
			}
			continue
		}
		failures = 0
		done, err := k.lead(hctx)
		release()
		if done {
			return nil
		}
		if err != nil && !errors.Is(err, ErrNotHeld) {
			return err
		}
	}
	return nil
}

// lead acts while the lock is held; done reports a finished rollout.
func (k *Controller) lead(ctx context.Context) (bool, error) {
	for {
		next, err := k.Tick(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if errors.Is(err, ErrNotHeld) {
				return false, err
			}
			if errors.Is(err, ErrConflict) {
				continue // read again: a command or a person wrote meanwhile
			}
			// Consul or the figures failed: try again after a poll.
			k.log.Warn("rollout: tick failed; trying again", zap.Duration("in", k.poll), zap.Error(err))
			next = time.Time{}
		}
		if s, err := k.store.Read(ctx); err == nil && (s.State == nil || s.State.Phase.Done()) {
			return true, nil
		}
		wait := k.poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(k.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-k.clock.After(wait):
		}
	}
}

// Tick does what is due now and returns when it is next due (zero: not
// until a command changes the state).
func (k *Controller) Tick(ctx context.Context) (time.Time, error) {
	snap, err := k.store.Read(ctx)
	if err != nil {
		return time.Time{}, err
	}
	st := snap.State
	if st == nil || st.Phase != Running {
		return time.Time{}, nil
	}
	plan, err := ParsePlan([]byte(st.Plan))
	if err != nil {
		return time.Time{}, err
	}
	now := k.clock.Now()
	next := *st
	if why := edited(snap, st); why != "" {
		next.Phase, next.Reason = Paused, why
		next.Left = max(st.Next.Sub(now), 0)
		next.Next = time.Time{}
		if err := k.store.Commit(ctx, snap, Update{State: &next}); err != nil {
			return time.Time{}, err
		}
		k.emit(Event{At: now, Steps: len(plan.Steps), Step: st.Step, Share: st.Share(plan), Phase: Paused, Action: "pause", Reason: why})
		return time.Time{}, nil
	}
	if st.Step < 0 {
		return k.move(ctx, snap, plan, &next, 0, "step", "")
	}
	if now.Before(st.Next) {
		return st.Next, nil
	}
	checks, outcome, reason, err := k.check(ctx, plan, st, now)
	if err != nil {
		return time.Time{}, err
	}
	next.Checks = append(next.Checks, checks...)
	if len(next.Checks) > maxChecks {
		next.Checks = next.Checks[len(next.Checks)-maxChecks:]
	}
	ev := Event{At: now, Steps: len(plan.Steps), Step: st.Step, Share: st.Share(plan), Phase: Running, Checks: checks, Action: "check", Reason: reason}
	switch outcome {
	case Pass:
		next.Failures, next.Inconclusive = 0, 0
		if st.Step == len(plan.Steps)-1 {
			k.emit(ev)
			return k.finish(ctx, snap, plan, &next, Promoted, "every step passed")
		}
		k.emit(ev)
		return k.move(ctx, snap, plan, &next, st.Step+1, "step", "")
	case Fail:
		next.Failures++
		next.Inconclusive = 0
		if next.Failures >= plan.Analysis.Failures {
			k.emit(ev)
			return k.finish(ctx, snap, plan, &next, RolledBack, reason)
		}
	case Inconclusive:
		// Failures is left as it is: a check without enough requests is
		// no evidence that the version got better or worse.
		next.Inconclusive++
		if next.Inconclusive >= plan.Analysis.MaxInconclusive {
			return k.pauseThin(ctx, snap, plan, &next, ev)
		}
	}
	next.Next = now.Add(plan.Hold)
	if err := k.store.Commit(ctx, snap, Update{State: &next}); err != nil {
		return time.Time{}, err
	}
	k.emit(ev)
	return next.Next, nil
}

// pauseThin pauses the rollout after the plan's MaxInconclusive
// inconclusive checks in a row: without the requests an analysis needs,
// there is no evidence to go on or to roll back. The step keeps its share;
// Resume grants another hold and as many checks again.
func (k *Controller) pauseThin(ctx context.Context, snap *Snapshot, plan *Plan, next *State, ev Event) (time.Time, error) {
	var c Check // the first service short of requests names the reason, as in check
	for _, x := range ev.Checks {
		if x.Outcome == Inconclusive {
			c = x
			break
		}
	}
	why := fmt.Sprintf("%s: %d inconclusive checks in a row (%s); resume to keep checking, or promote/abort",
		c.Service, next.Inconclusive, c.Reason)
	next.Phase, next.Reason, next.Left, next.Next = Paused, why, plan.Hold, time.Time{}
	if err := k.store.Commit(ctx, snap, Update{State: next}); err != nil {
		return time.Time{}, err
	}
	k.log.Info("rollout: pause", zap.String("rule_key", plan.RuleKey), zap.String("reason", why))
	k.emit(ev)
	k.emit(Event{At: ev.At, Steps: ev.Steps, Step: ev.Step, Share: ev.Share, Phase: Paused, Action: "pause", Reason: why})
	return time.Time{}, nil
}

// check reads and judges the figures of every service: the worst verdict
// wins.
func (k *Controller) check(ctx context.Context, plan *Plan, st *State, now time.Time) ([]Check, Outcome, string, error) {
	outcome, reason := Pass, ""
	var checks []Check
	for _, svc := range plan.Services {
		v := st.Versions[svc]
		nw, err := k.figures.Query(ctx, svc, v[1], now, plan.Analysis.Window)
		if err != nil {
			return nil, "", "", err
		}
		old, err := k.figures.Query(ctx, svc, v[0], now, plan.Analysis.Window)
		if err != nil {
			return nil, "", "", err
		}
		o, why := Judge(plan.Analysis, nw, old)
		checks = append(checks, Check{Service: svc, Step: st.Step, At: now, New: nw, Old: old, Outcome: o, Reason: why})
		if o == Fail && outcome != Fail || o == Inconclusive && outcome == Pass {
			outcome, reason = o, svc+": "+why
		}
	}
	return checks, outcome, reason, nil
}

// edited says why the spec or rule is no longer what the controller wrote,
// or "".
func edited(snap *Snapshot, st *State) string {
	if snap.Spec == nil {
		return "the spec was deleted"
	}
	if st.Step >= 0 && string(snap.Spec) != st.Spec {
		return fmt.Sprintf("the spec was edited by someone else (index %d)", snap.SpecIndex)
	}
	if handWritten(snap) {
		return fmt.Sprintf("the rule key was written by hand (index %d)", snap.RuleIndex)
	}
	return ""
}

// handWritten reports whether the rule key holds a rule not rendered from
// a spec, written after the spec (as graylane orchestrate reads it).
func handWritten(snap *Snapshot) bool {
	return snap.Rule != nil && snap.RuleFlags != RenderedFlags && snap.RuleIndex > snap.SpecIndex
}

// move writes step i's weights and starts its hold.
func (k *Controller) move(ctx context.Context, snap *Snapshot, plan *Plan, next *State, i int, action, reason string) (time.Time, error) {
	now := k.clock.Now()
	share := plan.Steps[i]
	u, err := k.weights(ctx, snap, plan, share)
	if err != nil {
		return time.Time{}, err
	}
	next.Step, next.StepStart, next.Next, next.Spec = i, now, now.Add(plan.Hold), string(u.Spec)
	next.Failures, next.Inconclusive = 0, 0
	u.State = next
	if err := k.store.Commit(ctx, snap, u); err != nil {
		return time.Time{}, err
	}
	k.log.Info("rollout: step", zap.String("rule_key", plan.RuleKey), zap.Int("step", i+1), zap.Int("share", share))
	k.emit(Event{At: now, Steps: len(plan.Steps), Step: i, Share: share, Phase: Running, Action: action, Reason: reason})
	return next.Next, nil
}

// finish promotes or rolls back.
func (k *Controller) finish(ctx context.Context, snap *Snapshot, plan *Plan, next *State, phase Phase, reason string) (time.Time, error) {
	now := k.clock.Now()
	share := 0
	if phase == Promoted {
		share = 100
	}
	u, err := k.weights(ctx, snap, plan, share)
	if err != nil {
		return time.Time{}, err
	}
	next.Phase, next.Reason, next.Next, next.Left, next.Spec = phase, reason, time.Time{}, 0, string(u.Spec)
	if phase == Promoted {
		r, err := rule.Parse(u.Rule)
		if err != nil {
			return time.Time{}, err
		}
		next.Drained = drainedAll(r, plan, next)
	}
	u.State = next
	if err := k.store.Commit(ctx, snap, u); err != nil {
		return time.Time{}, err
	}
	action := "promote"
	if phase != Promoted {
		action = "rollback"
	}
	k.log.Info("rollout: "+action, zap.String("rule_key", plan.RuleKey), zap.String("reason", reason))
	k.emit(Event{At: now, Steps: len(plan.Steps), Step: next.Step, Share: share, Phase: phase, Action: action, Reason: reason})
	return time.Time{}, nil
}

func (k *Controller) emit(e Event) {
	if k.events != nil {
		k.events(e)
	}
}

// weights returns the spec with the default gray entry at [100-share,
// share] and its rendering against the live instances.
func (k *Controller) weights(ctx context.Context, snap *Snapshot, plan *Plan, share int) (Update, error) {
	spec, err := rule.ParseSpec(snap.Spec)
	if err != nil {
		return Update{}, fmt.Errorf("rollout: the spec at %s: %w", orchestrate.SpecKey(plan.RuleKey), err)
	}
	setShare(spec, share)
	doc, err := rule.EncodeSpecYAML(spec)
	if err != nil {
		return Update{}, err
	}
	inv, err := inventory(ctx, k.reg, spec.Service)
	if err != nil {
		return Update{}, err
	}
	rd, err := orchestrate.Render(spec, inv)
	if err != nil {
		return Update{}, err
	}
	return Update{Spec: doc, Rule: rd.XML}, nil
}

// setShare sets the default gray entry (the one without expression) to
// [100-share, share], adding it when the spec has none.
func setShare(spec *rule.Spec, share int) {
	w := [2]int{100 - share, share}
	for i := range spec.Gray {
		if spec.Gray[i].Expression == "" {
			spec.Gray[i].Weight = w
			return
		}
	}
	spec.Gray = append(spec.Gray, rule.GrayEntry{Weight: w})
}

// inventory reads the live instances of services from reg.
func inventory(ctx context.Context, reg discovery.Registry, services []string) (rule.Inventory, error) {
	inv := rule.Inventory{}
	for _, name := range services {
		w := reg.Watch(name)
		select {
		case <-w.Ready():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		snap := w.Snapshot()
		for i := range snap.Instances {
			inv[name] = append(inv[name], rule.Instance{Version: snap.Instances[i].Version, Started: snap.Instances[i].Started})
		}
	}
	return inv, nil
}

// resolve returns the [old, new] versions of each service of plan, from
// the spec's rendering against the live instances: old is route-0's
// version, new one of route-1's (the newest for Newest). An explicit
// version must be the one the spec routes that side to.
func resolve(ctx context.Context, reg discovery.Registry, spec *rule.Spec, plan *Plan) (map[string][2]string, error) {
	for _, svc := range plan.Services {
		if !slices.Contains(spec.Service, svc) {
			return nil, fmt.Errorf("rollout: service %q of the plan is not in the spec's services %v", svc, spec.Service)
		}
	}
	s := *spec
	s.Gray = slices.Clone(spec.Gray)
	setShare(&s, 0)
	inv, err := inventory(ctx, reg, s.Service)
	if err != nil {
		return nil, err
	}
	r, err := rule.Orchestrate(&s, inv)
	if err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, svc := range plan.Services {
		old, _ := r.Strategy.Version.For(svc)
		var news []string
		for _, rt := range r.Release.Routes {
			if rt.ID == "route-1" {
				v, _ := rt.Value.For(svc)
				news = strings.Split(v, ";")
			}
		}
		o, n := old, news[len(news)-1]
		if n == old {
			return nil, fmt.Errorf("rollout: service %q runs one version only (%s)", svc, old)
		}
		if plan.Old != Oldest {
			if plan.Old != old {
				return nil, fmt.Errorf("rollout: service %q: the spec's old side is %s, not the plan's %s", svc, old, plan.Old)
			}
		}
		if plan.New != Newest {
			if !slices.Contains(news, plan.New) {
				return nil, fmt.Errorf("rollout: service %q: the plan's new version %s is not on the spec's new side %v", svc, plan.New, news)
			}
			n = plan.New
		}
		out[svc] = [2]string{o, n}
	}
	return out, nil
}

// drainedAll reports per service whether the drain gate sees the old
// version drained under r.
func drainedAll(r *rule.Rule, plan *Plan, st *State) map[string]bool {
	out := make(map[string]bool, len(plan.Services))
	for _, svc := range plan.Services {
		out[svc] = !drain.Analyze(r, svc, st.Versions[svc][0]).Receiving
	}
	return out
}
