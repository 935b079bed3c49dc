package consultest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Agent is a running Consul agent on loopback ports: a `consul agent -dev`
// from Start, or a server or client agent of a Cluster. Its methods are for
// the test goroutine; it is not meant for concurrent Stop/Restart.
type Agent struct {
	bin     string
	dir     string // scratch directory, removed at cleanup
	node    string
	ports   ports
	mode    []string // the arguments that make it a dev, server or client agent
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *syncBuffer
	client  *api.Client
	stopped bool
}

type ports struct{ http, serfLAN, serfWAN, server int }

// Start builds (if needed) and starts a dev agent for tb, waits until it has
// a leader, and registers a cleanup that stops it and removes its files.
// Under CI=true any failure to obtain or start the agent fails the test;
// otherwise the test is skipped with the reason.
func Start(tb testing.TB) *Agent {
	tb.Helper()
	a, err := start(tb.TempDir())
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(func() { a.kill() })
	return a
}

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("consul agent required under CI=true: %v", err)
	}
	tb.Skipf("no consul agent: %v", err)
}

func start(dir string) (*Agent, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var last error
	// Free ports are found by binding and closing; another package's agent
	// can grab one in between, so a failed start is retried on new ports.
	for attempt := 0; attempt < 4; attempt++ {
		p, err := freePorts()
		if err != nil {
			return nil, err
		}
		a := &Agent{bin: bin, dir: dir, ports: p, node: "graylane-test-" + strconv.Itoa(p.http), mode: []string{"-dev"}}
		if err := a.launch(); err != nil {
			last = err
			continue
		}
		return a, nil
	}
	return nil, last
}

// launch runs the agent on a's ports and waits for a leader. The limit is a
// deadline, not a pass mark: a cluster server restarted after losing the
// quorum needs an election, which on a busy two-core machine can take well
// over 30 s.
func (a *Agent) launch() error {
	if err := a.spawn(); err != nil {
		return err
	}
	return a.ready(2 * time.Minute)
}

// ready waits until the agent is ready (see waitReady) and stops it if it
// does not become so within limit.
func (a *Agent) ready(limit time.Duration) error {
	if err := a.waitReady(limit); err != nil {
		a.kill()
		return fmt.Errorf("consultest: agent on %s: %w\n%s", a.HTTPAddr(), err, a.log.String())
	}
	return nil
}

// spawn starts the agent process on a's ports without waiting for it.
func (a *Agent) spawn() error {
	a.log = &syncBuffer{}
	args := append([]string{"agent"}, a.mode...)
	a.cmd = exec.Command(a.bin, append(args,
		"-node", a.node,
		"-bind", "127.0.0.1",
		"-client", "127.0.0.1",
		"-advertise", "127.0.0.1",
		"-http-port", strconv.Itoa(a.ports.http),
		"-serf-lan-port", strconv.Itoa(a.ports.serfLAN),
		"-serf-wan-port", strconv.Itoa(a.ports.serfWAN),
		"-server-port", strconv.Itoa(a.ports.server),
		"-dns-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-hcl", "disable_update_check = true",
		"-log-level", "warn",
	)...)
	a.cmd.Dir = a.dir
	a.cmd.Stdout = a.log
	a.cmd.Stderr = a.log
	// Its own process group, so a test binary killed mid-run does not take
	// the terminal's signals to it and we can stop it cleanly.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("consultest: start agent: %w", err)
	}
	a.exited = make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	a.stopped = false

	cfg := a.Config()
	client, err := api.NewClient(cfg)
	if err != nil {
		a.kill()
		return fmt.Errorf("consultest: client: %w", err)
	}
	a.client = client
	return nil
}

// waitReady polls until the agent has a leader and its own node is in the
// catalog, which is when writes and registrations succeed.
func (a *Agent) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-a.exited:
			return errors.New("agent exited during start-up")
		default:
		}
		leader, err := a.client.Status().Leader()
		if err == nil && leader != "" {
			node, _, err2 := a.client.Catalog().Node(a.node, nil)
			if err2 == nil && node != nil {
				return nil
			}
			err = err2
		}
		if err != nil {
			last = err
		} else {
			last = errors.New("no leader yet")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", limit, last)
}

// Client returns a client for the agent.
func (a *Agent) Client() *api.Client { return a.client }

// HTTPAddr returns the agent's HTTP address, "127.0.0.1:port".
func (a *Agent) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.http))
}

// Config returns a fresh client configuration pointing at the agent, for
// tests that need their own client (a different transport, a proxy).
func (a *Agent) Config() *api.Config {
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Scheme = "http"
	cfg.Token = ""
	return cfg
}

// Node returns the agent's node name.
func (a *Agent) Node() string { return a.node }

// Stop stops the agent (SIGINT, then SIGKILL after 10 s). A dev agent keeps
// nothing: after Restart the catalog and KV are empty; a cluster's agents
// keep their data directories.
func (a *Agent) Stop(tb testing.TB) {
	tb.Helper()
	a.kill()
}

// Restart starts the agent again on the same ports after Stop (or stops it
// first) and waits for a leader.
func (a *Agent) Restart(tb testing.TB) {
	tb.Helper()
	a.kill()
	var err error
	// The old process's sockets may linger for a moment.
	for attempt := 0; attempt < 20; attempt++ {
		if err = a.launch(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	unavailable(tb, fmt.Errorf("restart on the same ports: %w", err))
}

// Kill ends the agent at once with SIGKILL, as a crash or a lost machine
// would: no leave, no leadership transfer. Restart brings it back.
func (a *Agent) Kill(tb testing.TB) {
	tb.Helper()
	if a.stopped || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.stopped = true
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.exited
}

// ServerAddr returns the agent's server RPC address, "127.0.0.1:port", as
// Consul names servers (in Status().Leader() and Status().Peers()).
func (a *Agent) ServerAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.server))
}

// SerfLANAddr returns the agent's serf LAN address, which others join.
func (a *Agent) SerfLANAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.serfLAN))
}

func (a *Agent) kill() {
	if a.stopped || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.stopped = true
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
	}
}

// freePorts finds four distinct loopback ports free for both TCP and UDP
// (serf uses both).
func freePorts() (ports, error) {
	set, err := freePortSets(1)
	if err != nil {
		return ports{}, err
	}
	return set[0], nil
}

// freePortSets finds n sets of four loopback ports, all distinct, each free
// for both TCP and UDP. All are held until every one is found, so no two
// sets share a port.
func freePortSets(n int) ([]ports, error) {
	var got []int
	var hold []func()
	defer func() {
		for _, h := range hold {
			h()
		}
	}()
	for len(got) < 4*n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("consultest: free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			l.Close()
			continue
		}
		hold = append(hold, func() { l.Close(); u.Close() })
		got = append(got, p)
	}
	out := make([]ports, n)
	for i := range out {
		g := got[4*i:]
		out[i] = ports{http: g[0], serfLAN: g[1], serfWAN: g[2], server: g[3]}
	}
	return out, nil
}

// syncBuffer collects the agent's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded on a chatty agent
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitLeader waits, up to ctx's deadline, until the agent reports a leader.
// Tests that restart the agent behind a component under test use it.
func (a *Agent) WaitLeader(ctx context.Context) error {
	for {
		if l, err := a.client.Status().Leader(); err == nil && l != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
