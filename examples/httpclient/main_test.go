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

// rows returns the output's lines with runs of spaces collapsed.
func rows(out string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		m[strings.Join(strings.Fields(line), " ")] = true
	}
	return m
}

func checkOutput(t *testing.T, out string) {
	t.Helper()
	got := rows(out)
	for _, want := range []string{
		"no route (none) 1.0 x10, 1.1 x10 1.0 x10, 1.1 x10 user ann, route (none) ok",
		`inventory on 1.1 {"inventory":"1.1"} 1.1 x20 1.0 x10, 1.1 x10 user bob, route {"inventory":"1.1"} ok`,
		"all on 1.0 1.0 1.0 x20 1.0 x20 user cai, route 1.0 ok",
		`all on 1.1 {"inventory":"1.1","pricing":"1.1"} 1.1 x20 1.1 x20 user dee, route {"inventory":"1.1","pricing":"1.1"} ok`,
		`no such version {"inventory":"2.0"} - - nothing: order-service answered 503 ok`,
		"Every call followed the route it arrived with; the user header travelled with it.",
	} {
		if !got[want] {
			t.Errorf("output lacks the row %q:\n%s", want, out)
		}
	}
	for _, want := range []string{`no instance of "inventory" for route version=2.0`, "untouched: no n-d-* headers"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a check failed:\n%s", out)
	}
}

func TestHTTPClientEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String())
}

func TestHTTPClientConsul(t *testing.T) {
	out := demo.RunOnConsul(t, 30*time.Second, func(ctx context.Context, out io.Writer, addr string) error {
		return run(ctx, out, addr, zap.NewNop())
	})
	checkOutput(t, out)
}
