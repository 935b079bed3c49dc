package consultest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/consul/api"
)

// childAgent names, in a child's environment, the HTTP address of the
// agent its parent test uses.
const childAgent = "GRAYLANE_TEST_CHILD_CONSUL"

// StartChild starts the running test binary again as a child process that
// runs no test, with env (NAME=value) added and a's address, for a test that
// must kill a process (SIGKILL: no clean-up, as a crash). The child's
// TestMain calls [ChildClient] to find out it is one. Killing it is the
// test's business; cleanup kills it in any case and logs its output when
// the test failed.
func StartChild(tb testing.TB, a *Agent, env ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childAgent+"="+a.HTTPAddr()), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		<-done
		if tb.Failed() {
			tb.Logf("child output:\n%s", out.String())
		}
	})
	return cmd
}

// ChildClient reports whether this process is a child started by
// [StartChild] and, if so, returns a client for its parent's agent. The
// child exits when its parent goes away (the parent holds the other end of
// its standard input), even if the parent could not kill it; it exits with
// status 1 if no client can be made.
func ChildClient() (*api.Client, bool) {
	addr := os.Getenv(childAgent)
	if addr == "" {
		return nil, false
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cl, err := api.NewClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return cl, true
}
