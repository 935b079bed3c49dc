package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/internal/promtest"
	"github.com/graylane/graylane/rollout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRolloutHealthyPromotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, config{n: 1000}, zap.NewNop()); err != nil {
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
	if err := run(ctx, &out, config{fail: 5, n: 1000}, zap.NewNop()); err != nil {
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
		return run(ctx, out, config{consul: addr, fail: 5, n: 1000}, zap.NewNop())
	}, ruleKey, rollout.SpecKey(ruleKey), rollout.StatePrefix+ruleKey)
	for _, want := range []string{"rollback", "rolled-back: ", "Every chain stayed on one side."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runOnPrometheus runs the -prometheus mode against a real Prometheus
// scraping the program's -metrics address, with short holds, and reads
// the gateway's debug page (-debug) while the rollout runs.
func runOnPrometheus(t *testing.T, fail int) (string, []rollout.View) {
	metrics, debug := freeAddr(t), freeAddr(t)
	prom := promtest.Start(t, metrics)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, &out, config{fail: fail, prometheus: prom.URL, metrics: metrics, hold: 3 * time.Second, debug: debug}, zap.NewNop())
	}()
	// The rollout's section of the debug page, as a person would read it
	// during the run.
	var views []rollout.View
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			return out.String(), views
		case <-time.After(500 * time.Millisecond):
		}
		resp, err := client.Get("http://" + debug + "/?format=json")
		if err != nil {
			continue
		}
		var st balancer.DebugState
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || len(st.Sections) != 1 || st.Sections[0].Value == nil {
			continue
		}
		var v rollout.View
		if json.Unmarshal(st.Sections[0].Value, &v) == nil && v.Step > 0 {
			views = append(views, v)
		}
	}
}

func TestRolloutPrometheusPromotes(t *testing.T) {
	out, views := runOnPrometheus(t, 0)
	for _, want := range []string{
		"scrape_configs:\n  - job_name: graylane-rollout\n", "scrape_interval: 1s",
		"step 1/4   5%  step", "step 4/4 100%  check", "promote  (every step passed)",
		"old versions drained for the drain gate: svc-a true, svc-b true", "Every chain stayed on one side.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The figures the checks used came from Prometheus.
	if !regexp.MustCompile(`svc-b new [1-9][0-9]* req, 0\.00% err, p99 [^/]+ / old [1-9][0-9]* req[^:]*: pass`).MatchString(out) {
		t.Errorf("checks without figures:\n%s", out)
	}
	seen := false
	for _, v := range views {
		if v.Phase == rollout.Running && v.Steps == 4 && v.Next.Action == "check" && strings.HasPrefix(v.Next.Text, "check svc-a, svc-b figures over the last 3s") {
			seen = true
		}
	}
	if !seen {
		t.Errorf("the debug page never showed the running rollout's next check: %+v", views)
	}
}

// TestRolloutPrometheusConsulFailingRollsBack runs the -prometheus mode
// on a real Consul agent too.
func TestRolloutPrometheusConsulFailingRollsBack(t *testing.T) {
	metrics := freeAddr(t)
	prom := promtest.Start(t, metrics)
	out := demo.RunOnConsul(t, 2*time.Minute, func(ctx context.Context, out io.Writer, addr string) error {
		return run(ctx, out, config{consul: addr, fail: 5, prometheus: prom.URL, metrics: metrics, hold: 3 * time.Second}, zap.NewNop())
	}, ruleKey, rollout.SpecKey(ruleKey), rollout.StatePrefix+ruleKey)
	for _, want := range []string{"rollback", "rolled-back: ", "above the maximum 1.000%", "Every chain stayed on one side."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// syncWriter is a bytes.Buffer safe for a writer and a reader.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
