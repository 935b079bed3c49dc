package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core, logs := observer.New(zap.InfoLevel)
	var out bytes.Buffer
	if err := run(ctx, &out, zap.New(core)); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "published 800, handled 800, lost 0, handled twice 0") {
		t.Errorf("summary missing:\n%s", out.String())
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		rows[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, want := range []string{
		"1. before 1.0=100;1.1=0 consuming paused 200 0",
		"3. cut over 1.0=0;1.1=100 paused consuming 0 200",
		"4. rollback 1.0=100;1.1=0 consuming paused 200 0",
	} {
		if !rows[want] {
			t.Errorf("output lacks the row %q:\n%s", want, out.String())
		}
	}
	drained := logs.FilterMessage("drain gate: version drained").All()
	if len(drained) != 2 { // 1.0 at cut over, 1.1 at rollback
		t.Errorf("%d drained logs, want 2", len(drained))
	}
}
