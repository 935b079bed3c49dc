// Command check is the project's whole test suite, one command on a machine
// with only Go:
//
//	go run ./internal/check [go test flags...]
//
// It builds the pinned Consul agent once into the cache directory (see
// internal/consultest), checks gofmt, runs go vet and the pinned staticcheck,
// then runs `go test -race -count=1 ./...` with the agent available to the
// integration tests. Extra arguments are passed to go test (for example
// -run or -v). .ci/run runs exactly this command.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/graylane/graylane/internal/consultest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
}

// run runs every step even when an earlier one fails, so one run shows all
// problems; it fails if any step failed. Only a missing agent stops it early,
// since the tests cannot run without one.
func run(testArgs []string) error {
	var failed []string
	fail := func(step string, err error) {
		fmt.Fprintf(os.Stderr, "check: %s: %v\n", step, err)
		failed = append(failed, step)
	}

	step("gofmt")
	out, err := output("gofmt", "-l", ".")
	if err == nil && strings.TrimSpace(out) != "" {
		err = fmt.Errorf("would change these files:\n%s", strings.TrimSpace(out))
	}
	if err != nil {
		fail("gofmt", err)
	}

	step("consul agent " + consultest.Version)
	start := time.Now()
	bin, err := consultest.Binary()
	if err != nil {
		return err
	}
	fmt.Printf("    %s (ready in %s)\n", bin, time.Since(start).Round(time.Second))
	// Every test package finds the agent through this variable.
	if err := os.Setenv(consultest.EnvBinary, bin); err != nil {
		return err
	}

	step("go vet")
	if err := stream("go", "vet", "./..."); err != nil {
		fail("go vet", err)
	}

	step("staticcheck")
	if sc, err := staticcheck(); err != nil {
		fail("staticcheck", err)
	} else if err := stream(sc, "./..."); err != nil {
		fail("staticcheck", err)
	}

	step("go test -race")
	args := append([]string{"test", "-race", "-count=1", "-timeout=20m"}, testArgs...)
	args = append(args, "./...")
	if err := stream("go", args...); err != nil {
		fail("go test", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// staticcheck builds the pinned staticcheck from internal/tools/staticcheck
// into the cache directory (go build's cache makes repeat builds instant).
func staticcheck() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "graylane", "staticcheck")
	cmd := exec.Command("go", "build", "-o", bin, "honnef.co/go/tools/cmd/staticcheck")
	cmd.Dir = filepath.Join("internal", "tools", "staticcheck")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building staticcheck: %w\n%s", err, out)
	}
	return bin, nil
}

func step(name string) { fmt.Printf("==> %s\n", name) }

func stream(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

func output(name string, args ...string) (string, error) {
	var buf bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout = &buf
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return buf.String(), err
}
