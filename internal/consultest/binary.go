// Package consultest runs a real Consul agent for integration tests.
//
// The agent is Consul v1.14.11, built from the pinned tool module in
// internal/tools/consul into a cache directory outside the repository, once;
// later runs reuse the binary. GRAYLANE_CONSUL_BIN may name an existing
// binary instead.
//
// [Start] launches `consul agent -dev` on free loopback ports, waits until it
// has a leader, and stops it and removes its files when the test ends. When
// CI=true and no agent can be built or started, the test fails; elsewhere it
// is skipped with the reason.
//
// [StartCluster] launches a real datacenter instead: servers started with
// -server -bootstrap-expect and a client agent, each on its own free
// loopback ports and data directory, joined, at production raft timing.
// Tests kill the leader ([Agent.Kill]), wait for the next one
// ([Cluster.WaitLeader]) and bring servers back ([Agent.Restart]).
package consultest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
)

// Version is the Consul version the tests run against.
const Version = "v1.14.11"

// EnvBinary names an environment variable that, when set, points at an
// existing consul binary to use instead of building one.
const EnvBinary = "GRAYLANE_CONSUL_BIN"

// Binary returns the path of the consul binary, building it into the cache
// directory if it is not there yet. Concurrent callers (test packages run in
// parallel) wait for one build through a file lock.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("consultest: %s=%q: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "consul")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("consultest: cache dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("consultest: build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("consultest: build lock: %w", err)
	}
	// Closing the file releases the lock too; the explicit unlock is early.
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	// Another process may have built it while we waited for the lock.
	if isExecutable(bin) {
		return bin, nil
	}
	src, err := toolDir()
	if err != nil {
		return "", err
	}
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/hashicorp/consul")
	cmd.Dir = src
	// The tool module builds read-only against its committed go.sum.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("consultest: building consul %s in %s: %w\n%s", Version, src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("consultest: %w", err)
	}
	return bin, nil
}

// cacheDir is where the built binary lives: $GRAYLANE_CACHE, or the user's
// cache directory (XDG_CACHE_HOME, else ~/.cache) under graylane/.
func cacheDir() (string, error) {
	if d := os.Getenv("GRAYLANE_CACHE"); d != "" {
		return filepath.Join(d, "consul-"+Version), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("consultest: no cache directory: %w", err)
	}
	return filepath.Join(d, "graylane", "consul-"+Version), nil
}

// toolDir finds internal/tools/consul next to this source file.
func toolDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("consultest: cannot locate the tool module")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "tools", "consul")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("consultest: tool module: %w", err)
	}
	return dir, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
