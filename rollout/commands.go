package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// ErrState is returned by a command the rollout's phase does not allow.
var ErrState = errors.New("rollout: not allowed in this phase")

// Start records a new rollout of plan (the plan document, validated) in
// store: its versions resolved against the spec and the live instances of
// reg, phase Running, no step written yet. A Controller then takes it
// step by step. A rollout still running or paused is never replaced.
func Start(ctx context.Context, store Store, reg discovery.Registry, planDoc []byte) (*State, error) {
	plan, err := ParsePlan(planDoc)
	if err != nil {
		return nil, err
	}
	snap, err := store.Read(ctx)
	if err != nil {
		return nil, err
	}
	if snap.State != nil && !snap.State.Phase.Done() {
		return nil, fmt.Errorf("%w: a rollout is %s at step %d", ErrState, snap.State.Phase, snap.State.Step+1)
	}
	if snap.Spec == nil {
		return nil, fmt.Errorf("rollout: no spec at %s; publish one first", orchestrate.SpecKey(plan.RuleKey))
	}
	spec, err := rule.ParseSpec(snap.Spec)
	if err != nil {
		return nil, fmt.Errorf("rollout: the spec at %s: %w", orchestrate.SpecKey(plan.RuleKey), err)
	}
	vs, err := resolve(ctx, reg, spec, plan)
	if err != nil {
		return nil, err
	}
	st := &State{Plan: string(planDoc), Versions: vs, Phase: Running, Step: -1, Spec: string(snap.Spec)}
	if err := store.Commit(ctx, snap, Update{State: st}); err != nil {
		return nil, err
	}
	return st, nil
}

// Status returns the rollout's state and plan; nil when there is none.
// When the state's plan does not parse, it returns the state with a nil
// plan and the error, so that the state can still be shown
// ([PlanErrorView]).
func Status(ctx context.Context, store Store) (*State, *Plan, error) {
	snap, err := store.Read(ctx)
	if err != nil || snap.State == nil {
		return nil, nil, err
	}
	plan, err := ParsePlan([]byte(snap.State.Plan))
	if err != nil {
		return snap.State, nil, fmt.Errorf("rollout: the state's plan: %w", err)
	}
	return snap.State, plan, nil
}

// Pause stops a running rollout at its step, keeping the step's remaining
// hold; why is recorded.
func Pause(ctx context.Context, store Store, now time.Time, why string) error {
	return change(ctx, store, func(_ *Snapshot, st *State, _ *Plan) (*Update, error) {
		if st.Phase != Running {
			return nil, fmt.Errorf("%w: %s", ErrState, st.Phase)
		}
		st.Phase, st.Reason, st.Left, st.Next = Paused, why, max(st.Next.Sub(now), 0), time.Time{}
		return &Update{State: st}, nil
	})
}

// Resume continues a paused rollout at its step with the hold it had
// left, and grants the plan's Analysis.MaxInconclusive checks again (a
// rollout paused for too many inconclusive checks checks again one hold
// later). A spec edited by someone else while paused is taken as it is:
// the next step writes its weights into it. A rule key written by hand
// is never overwritten: Resume refuses until the spec is published again.
func Resume(ctx context.Context, store Store, now time.Time) error {
	return change(ctx, store, func(snap *Snapshot, st *State, _ *Plan) (*Update, error) {
		if st.Phase != Paused {
			return nil, fmt.Errorf("%w: %s", ErrState, st.Phase)
		}
		if snap.Spec == nil {
			return nil, errors.New("rollout: the spec was deleted; publish it again before resuming")
		}
		if handWritten(snap) {
			return nil, errors.New("rollout: the rule key was written by hand; it is kept until the spec is published again (graylane publish), then resume")
		}
		st.Phase, st.Reason, st.Next, st.Left, st.Spec = Running, "", now.Add(st.Left), 0, string(snap.Spec)
		st.Inconclusive = 0
		return &Update{State: st}, nil
	})
}

// Abort ends a rollout that is not done, with the new version at 0
// percent.
func Abort(ctx context.Context, store Store, reg discovery.Registry, why string) error {
	return finishNow(ctx, store, reg, Aborted, why)
}

// Promote ends a rollout that is not done, with the new version at 100
// percent at once, skipping the remaining steps.
func Promote(ctx context.Context, store Store, reg discovery.Registry, why string) error {
	return finishNow(ctx, store, reg, Promoted, why)
}

func finishNow(ctx context.Context, store Store, reg discovery.Registry, phase Phase, why string) error {
	return change(ctx, store, func(snap *Snapshot, st *State, plan *Plan) (*Update, error) {
		if st.Phase.Done() {
			return nil, fmt.Errorf("%w: %s", ErrState, st.Phase)
		}
		share := 0
		if phase == Promoted {
			share = 100
		}
		k := &Controller{reg: reg}
		u, err := k.weights(ctx, snap, plan, share)
		if err != nil {
			return nil, err
		}
		st.Phase, st.Reason, st.Next, st.Left, st.Spec = phase, why, time.Time{}, 0, string(u.Spec)
		if phase == Promoted {
			r, err := rule.Parse(u.Rule)
			if err != nil {
				return nil, err
			}
			st.Drained = drainedAll(r, plan, st)
		}
		u.State = st
		return &u, nil
	})
}

// change applies fn to the current state and commits, reading again when
// something moved meanwhile.
func change(ctx context.Context, store Store, fn func(*Snapshot, *State, *Plan) (*Update, error)) error {
	for range 8 {
		snap, err := store.Read(ctx)
		if err != nil {
			return err
		}
		if snap.State == nil {
			return fmt.Errorf("%w: no rollout", ErrState)
		}
		plan, err := ParsePlan([]byte(snap.State.Plan))
		if err != nil {
			return err
		}
		st := *snap.State
		u, err := fn(snap, &st, plan)
		if err != nil {
			return err
		}
		err = store.Commit(ctx, snap, *u)
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%w 8 times in a row", ErrConflict)
}
