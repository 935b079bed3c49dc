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
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"a@1.0 > b@1.0: 60 ", // xyz=1: every chain on 1.0
		"a@1.1 > b@1.1: 60 ", // xyz=2: every chain on 1.1
		"Every chain stayed on one side",
	} {
		if !strings.Contains(out+" ", want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a check failed:\n%s", out)
	}
}

func TestQuickstartEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", 600, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String())
}

func TestQuickstartConsul(t *testing.T) {
	out := demo.RunOnConsul(t, 45*time.Second, func(ctx context.Context, out io.Writer, addr string) error {
		return run(ctx, out, addr, 600, zap.NewNop())
	}, ruleKey)
	checkOutput(t, out)
}
