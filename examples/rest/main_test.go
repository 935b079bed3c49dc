package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, zap.NewNop()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		rows[strings.Join(strings.Fields(line), " ")] = true
	}
	for _, want := range []string{
		"stable (x-beta: none) rest.Get[User] /users/{id} 10 200 x10 u-1.0 x10 ok",
		"beta (x-beta: true) rest.Get[User] /users/{id} 10 200 x10 u-1.1-a x5, u-1.1-b x5 ok",
		"missing user rest.Get[User] /users/{id} 1 404 x1 - ok",
		"POST, no key rest.Post[NewUser, User] 4 200 x2, 502 x2 u-1.1-a x2 ok",
		"POST, idempotency key rest.Post[NewUser, User], rest.Retryable() 8 200 x8 u-1.1-a x8 ok",
		"protobuf rest.Get[*structpb.Struct], rest.Encoding(rest.Protobuf) 2 200 x2 u-1.1-a x1, u-1.1-b x1 ok",
		"form rest.Post[SignupForm, SignupForm], rest.Encoding(rest.Form) 2 200 x2 u-1.1-a x1, u-1.1-b x1 ok",
		"no token rest.Get[User] without the interceptor 1 401 x1 - ok",
		"Every call went to the version its header chose; errors and retries behaved as shown.",
	} {
		if !rows[want] {
			t.Errorf("output lacks the row %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("a check failed:\n%s", out.String())
	}
}
