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
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		for _, name := range []string{
			"client sends n-d-version: 1.1 ignored",
			"the same, at an internal entry obeyed",
			"x-team: qa blue-green: 1.1",
			"x-country: de region eu",
			"user-id u0..u299, 4 calls each sticky",
		} {
			if strings.HasPrefix(line, name) {
				rows[name] = line
			}
		}
	}
	for name, want := range map[string][]string{
		// The client's own n-d-* headers are dropped: the split is the rule's,
		// in the region the rule chose.
		"client sends n-d-version: 1.1 ignored": {"1.0/us > 1.0/us: ", "1.1/us > 1.1/us: "},
		"the same, at an internal entry obeyed": {"1.1/eu > 1.1/eu: 60 100.0%"},
		"x-team: qa blue-green: 1.1":            {"1.1/us > 1.1/us: 60 100.0%"},
		"x-country: de region eu":               {"1.0/eu > 1.0/eu: ", "1.1/eu > 1.1/eu: "},
		"user-id u0..u299, 4 calls each sticky": {"300 users x 4", "1.0/us > 1.0/us: ", "1.1/us > 1.1/us: "},
	} {
		row, ok := rows[name]
		if !ok {
			t.Errorf("no row %q:\n%s", name, out)
			continue
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row %q lacks %q", row, w)
			}
		}
		if !strings.HasSuffix(row, " ok") {
			t.Errorf("row failed its check: %q", row)
		}
	}
	if !strings.Contains(out, "No client routed itself through the gateway") {
		t.Errorf("no summary:\n%s", out)
	}
}

func TestGatewayEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", 600, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String())
}

func TestGatewayConsul(t *testing.T) {
	out := demo.RunOnConsul(t, 45*time.Second, func(ctx context.Context, out io.Writer, addr string) error {
		return run(ctx, out, addr, 600, zap.NewNop())
	}, ruleKeys.Service)
	checkOutput(t, out)
}
