package demo

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
)

// RunOnConsul is the examples' real-Consul test: it starts a dev agent, runs
// the example against it (run gets the agent's address), checks that the
// example said it ran there and left nothing behind — no registered
// instance and none of keys in KV — and returns the example's output for
// the example's own checks.
func RunOnConsul(t testing.TB, timeout time.Duration, run func(ctx context.Context, out io.Writer, consulAddr string) error, keys ...string) string {
	t.Helper()
	agent := consultest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, agent.HTTPAddr()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Consul at "+agent.HTTPAddr()) {
		t.Errorf("did not run against the agent:\n%s", out.String())
	}
	services, err := agent.Client().Agent().Services()
	if err != nil || len(services) != 0 {
		t.Errorf("services left registered: %v (%v)", services, err)
	}
	for _, key := range keys {
		if p, _, err := agent.Client().KV().Get(key, nil); err != nil || p != nil {
			t.Errorf("rule key %s left in KV: %v (%v)", key, p, err)
		}
	}
	return out.String()
}
