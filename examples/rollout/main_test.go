package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/rollout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRolloutHealthyPromotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", 0, 1000, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"step 1/4   5%  step", "step 4/4 100%  step", "promote  (every step passed)",
		"old versions drained for the drain gate: svc-a true, svc-b true", "Every chain stayed on one side.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRolloutFailingRollsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", 5, 1000, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"rollback", "rolled-back: ", "above the maximum 1.000%", "Every chain stayed on one side."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "step 2/4") {
		t.Errorf("a release failing 5%% of its requests reached step 2:\n%s", out.String())
	}
}

func TestRolloutConsul(t *testing.T) {
	out := demo.RunOnConsul(t, 90*time.Second, func(ctx context.Context, out io.Writer, addr string) error {
		return run(ctx, out, addr, 5, 1000, zap.NewNop())
	}, ruleKey, rollout.SpecKey(ruleKey), rollout.StatePrefix+ruleKey)
	for _, want := range []string{"rollback", "rolled-back: ", "Every chain stayed on one side."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
