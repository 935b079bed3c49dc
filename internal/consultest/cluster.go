package consultest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Cluster is a Consul datacenter on loopback, as users run it: servers
// started with -bootstrap-expect and a client agent that applications talk
// to, each on its own free ports (HTTP, serf LAN and WAN, server RPC) and
// with its own data directory, all joined. Raft runs at production timing
// (raft_multiplier 1), so losing the leader costs a real election.
type Cluster struct {
	servers []*Agent
	client  *Agent
}

// StartCluster starts n servers (-server -bootstrap-expect n) and one
// client agent, joins them, and waits until there is a leader and every
// agent's node is in the catalog. n = 3 gives a quorum that survives the
// loss of one server. Cleanup stops every agent and removes its files.
// Under CI=true a failure fails the test; otherwise the test is skipped.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("consultest: a cluster of %d servers", n)
	}
	c, err := startCluster(tb.TempDir(), n)
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(c.stop)
	return c
}

func startCluster(dir string, n int) (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var last error
	// As in start: another package's agent may take a port between finding
	// it free and binding it, so a failed start is retried on new ports.
	for attempt := 0; attempt < 3; attempt++ {
		c, err := launchCluster(bin, filepath.Join(dir, strconv.Itoa(attempt)), n)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

func launchCluster(bin, dir string, n int) (*Cluster, error) {
	sets, err := freePortSets(n + 1)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var join []string
	for i := 0; i < n; i++ {
		join = append(join, "-retry-join", sets[i].serfLANAddr())
	}
	common := []string{
		"-hcl", "performance { raft_multiplier = 1 }",
		"-retry-interval", "1s",
	}
	newAgent := func(name string, p ports, mode []string) (*Agent, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			return nil, fmt.Errorf("consultest: %w", err)
		}
		mode = append(append(mode, "-data-dir", filepath.Join(d, "data")), common...)
		return &Agent{bin: bin, dir: d, ports: p, node: name + "-" + strconv.Itoa(p.http), mode: append(mode, join...)}, nil
	}
	for i := 0; i < n; i++ {
		a, err := newAgent("graylane-server"+strconv.Itoa(i+1), sets[i], []string{"-server", "-bootstrap-expect", strconv.Itoa(n)})
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, a)
	}
	a, err := newAgent("graylane-client", sets[n], nil)
	if err != nil {
		return nil, err
	}
	c.client = a
	for _, a := range c.all() {
		if err := a.spawn(); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, a := range c.all() {
		if err := a.ready(60 * time.Second); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (p ports) serfLANAddr() string { return "127.0.0.1:" + strconv.Itoa(p.serfLAN) }

func (c *Cluster) all() []*Agent { return append(append([]*Agent(nil), c.servers...), c.client) }

func (c *Cluster) stop() {
	for _, a := range c.all() {
		a.kill()
	}
}

// Servers returns the server agents, in start order.
func (c *Cluster) Servers() []*Agent { return c.servers }

// Agent returns the client agent, the one applications talk to.
func (c *Cluster) Agent() *Agent { return c.client }

// Leader returns the server that leads now, as the client agent sees it.
func (c *Cluster) Leader() (*Agent, error) {
	addr, err := c.client.Client().Status().Leader()
	if err != nil {
		return nil, err
	}
	for _, s := range c.servers {
		if s.ServerAddr() == addr && !s.stopped {
			return s, nil
		}
	}
	return nil, fmt.Errorf("consultest: no live server leads (leader %q)", addr)
}

// WaitLeader waits, up to ctx's deadline, until a live server other than
// not (nil for any) leads and the client agent can write through it, and
// returns it.
func (c *Cluster) WaitLeader(ctx context.Context, not *Agent) (*Agent, error) {
	var last error
	for {
		l, err := c.Leader()
		if err == nil && l != not {
			// A leader is elected; writes succeed once it has established
			// its leadership.
			if _, _, err = c.client.Client().Catalog().Node(c.client.node, &api.QueryOptions{RequireConsistent: true}); err == nil {
				return l, nil
			}
		}
		if err == nil {
			err = errors.New("the old leader still leads")
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consultest: no new leader: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
