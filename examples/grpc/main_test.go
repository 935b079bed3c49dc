package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/grpcroute"
)

func TestMain(m *testing.M) {
	grpcroute.Register() // as main does, before any channel exists
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, 600, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		rows[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, want := range []string{
		"x-channel: beta HTTP gateway 60 a@1.1 > b@1.1: 60 arrived 100.0% 100% ok",
		"x-channel: stable HTTP gateway 60 a@1.0 > b@1.0: 60 arrived 0.0% 0% ok",
		`n-d-version: {"svc-a":"1.1","svc-b":"1.0"} gRPC at svc-a 60 a@1.1 > b@1.0: 60 arrived - only a@1.1 > b@1.0 ok`,
		"Every chain kept its route across HTTP and gRPC hops; the user id reached the last hop.",
	} {
		if !rows[want] {
			t.Errorf("output lacks the row %q:\n%s", want, out.String())
		}
	}
	// The gray case: both chains, never a mixed one, within the tolerance.
	var gray string
	for row := range rows {
		if strings.HasPrefix(row, "no header HTTP gateway 600 ") {
			gray = row
		}
	}
	if !strings.Contains(gray, "a@1.0 > b@1.0: ") || !strings.Contains(gray, "a@1.1 > b@1.1: ") || !strings.HasSuffix(gray, " 10% ok") {
		t.Errorf("gray row %q: want both unmixed chains near 10%%:\n%s", gray, out.String())
	}
	if !strings.Contains(out.String(), `code = Unavailable desc = grpcroute: no ready instance of "svc-b" for route version=2.0`) {
		t.Errorf("no failure for a version nobody runs:\n%s", out.String())
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("a check failed:\n%s", out.String())
	}
}
