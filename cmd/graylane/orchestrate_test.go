package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
	orch "github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// lockedBuffer is a bytes.Buffer for a command's output written from
// several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOrchestrateUsage(t *testing.T) {
	for _, tt := range []struct {
		give []string
		want string
	}{
		{nil, "want one or more -key KEY"},
		{[]string{"-key", "k", "extra"}, "want one or more -key KEY"},
	} {
		code, _, errOut := call(t, "", append([]string{"orchestrate"}, tt.give...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d\n%s", tt.give, code, errOut)
		}
	}
}

// The command against the real agent: it renders a published spec, follows
// a new version, and releases its lock when interrupted.
func TestOrchestrateCommand(t *testing.T) {
	a := consultest.Start(t)
	addr := a.HTTPAddr()
	register(t, a, "svc-a", "1.0", 9001)
	register(t, a, "svc-a", "1.1", 9002)
	register(t, a, "svc-b", "1.0", 9003)
	const key = "demo-svc-a"

	code, _, errOut := call(t, "", "orchestrate", "-key", key, "-consul", addr, "-session-ttl", "1s")
	if code != exitUsage || !strings.Contains(errOut, "Consul accepts 10s to 24h") {
		t.Errorf("ttl 1s: exit %d\n%s", code, errOut)
	}
	code, _, errOut = call(t, "", "orchestrate", "-key", key, "-consul", addr, "-check-ttl", "500ms")
	if code != exitUsage || !strings.Contains(errOut, "at least 1s") {
		t.Errorf("check ttl 500ms: exit %d\n%s", code, errOut)
	}
	code, _, errOut = call(t, "", "orchestrate", "-key", key, "-consul", addr, "-check-ttl", "20s")
	if code != exitUsage || !strings.Contains(errOut, "at most the session TTL") {
		t.Errorf("check ttl 20s above the session TTL: exit %d\n%s", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr, ctx: ctx},
			[]string{"orchestrate", "-key", key, "-consul", addr, "-session-ttl", "10s"})
	}()

	// Published as a spec with only svc-a 1.0 and 1.1 and svc-b 1.0 up.
	if code, out, errOut := call(t, "", "publish", "-key", key, "-consul", addr, "testdata/spec.yaml"); code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	route1 := func() string {
		p, _, err := a.Client().KV().Get(key, nil)
		if err != nil || p == nil || p.Flags != orch.RenderedFlags {
			return ""
		}
		r, err := rule.Parse(p.Value)
		if err != nil {
			t.Fatalf("rendering: %v", err)
		}
		for _, rt := range r.Release.Routes {
			if rt.ID == "route-1" {
				s, _ := rt.Value.For("svc-b")
				return s
			}
		}
		return ""
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > 60*time.Second {
				t.Fatalf("%s: not within 60s\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s after %v", what, time.Since(start))
	}
	wait("the orchestrator holds the lock", func() bool { return strings.Contains(stderr.String(), "holding the lock") })
	register(t, a, "svc-b", "1.1", 9004)
	wait("the rendering follows svc-b 1.1", func() bool { return route1() == "1.1" })

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("orchestrate did not stop")
	}
	if p, _, err := a.Client().KV().Get(orch.LockKey(key), nil); err != nil || (p != nil && p.Session != "") {
		t.Errorf("lock still held after stop: %v %v", p, err)
	}
}
