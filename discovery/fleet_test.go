package discovery

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
)

// fleetConfig is one fleet run: watchers spread over processes, all on
// 127.0.0.1, against one agent.
type fleetConfig struct {
	name       string
	services   int
	instances  int // per service
	watchers   int
	processes  int
	limit      int    // limits.http_max_conns_per_client; 0 keeps the agent's default (200)
	hcl        string // more agent configuration
	perService bool   // WithWatchPerService and an api.Client per watcher, as before the feed
	cache      bool   // WithAgentCache
	rounds     int    // churn rounds: each flips one instance's check in every service
}

// fleetProc is one fleetwatch process and what it reported.
type fleetProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	first int // its first watcher's global number
	n     int

	mu       sync.Mutex
	ready    time.Time
	errs     map[int]string // watcher -> error
	limitErr int
	changes  map[int][]fleetChange // watcher -> changes seen
	stats    string
	done     chan struct{}
}

type fleetChange struct {
	instances int
	at        time.Time
}

func (p *fleetProc) scan(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		p.mu.Lock()
		switch f[0] {
		case "ready":
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			p.ready = time.Unix(0, ns)
		case "err":
			w, _ := strconv.Atoi(f[1])
			p.errs[w] = strings.Join(f[3:], " ")
			if f[2] == "true" {
				p.limitErr++
			}
		case "n":
			w, _ := strconv.Atoi(f[1])
			k, _ := strconv.Atoi(f[2])
			ns, _ := strconv.ParseInt(f[3], 10, 64)
			p.changes[w] = append(p.changes[w], fleetChange{instances: k, at: time.Unix(0, ns)})
		case "stats":
			p.stats = strings.Join(f[1:], " ")
		}
		p.mu.Unlock()
	}
}

// buildFleetwatch builds the helper binary once per test.
func buildFleetwatch(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool needed to build the fleet helper: %v", err)
		}
		t.Skipf("no go tool: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fleetwatch")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/graylane/graylane/internal/consultest/fleetwatch")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fleetwatch: %v\n%s", err, out)
	}
	return bin
}

func fleetServiceName(i int) string { return fmt.Sprintf("fleet-%02d", i) }

// registerFleet registers instances of every service on external nodes,
// each with a passing service check.
func registerFleet(t *testing.T, c *api.Client, services, instances int) {
	t.Helper()
	for s := range services {
		for i := range instances {
			setFleetCheck(t, c, s, i, api.HealthPassing)
		}
	}
}

func setFleetCheck(t *testing.T, c *api.Client, s, i int, status string) {
	t.Helper()
	name := fleetServiceName(s)
	id := fmt.Sprintf("%s-%d", name, i)
	node := fmt.Sprintf("fleet-node-%d", i)
	_, err := c.Catalog().Register(&api.CatalogRegistration{
		Node: node, Address: "127.0.0.1",
		Service: &api.AgentService{ID: id, Service: name, Address: "127.0.0.1", Port: 10000 + s*100 + i, Meta: map[string]string{"version": "1.0"}},
		Check:   &api.AgentCheck{Node: node, CheckID: "check-" + id, Name: "check", Status: status, ServiceID: id},
	}, nil)
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

// runFleet starts the agent and the processes, waits until every watcher is
// ready (or, with want429, reported), runs the churn, and returns the
// processes for further checks.
func runFleet(t *testing.T, cfg fleetConfig, want429 bool) (*consultest.Agent, []*fleetProc) {
	t.Helper()
	bin := buildFleetwatch(t)
	var hcl []string
	if cfg.limit > 0 {
		hcl = append(hcl, fmt.Sprintf("limits { http_max_conns_per_client = %d }", cfg.limit))
	}
	if cfg.hcl != "" {
		hcl = append(hcl, cfg.hcl)
	}
	agent := consultest.StartHCL(t, hcl...)
	client := agent.Client()
	registerFleet(t, client, cfg.services, cfg.instances)
	names := make([]string, cfg.services)
	for i := range names {
		names[i] = fleetServiceName(i)
	}

	per := cfg.watchers / cfg.processes
	procs := make([]*fleetProc, cfg.processes)
	start := time.Now()
	for i := range procs {
		n := per
		if i == len(procs)-1 {
			n = cfg.watchers - per*(len(procs)-1)
		}
		args := []string{"-addr", agent.HTTPAddr(), "-services", strings.Join(names, ","),
			"-watchers", strconv.Itoa(n), "-offset", strconv.Itoa(i * per)}
		if cfg.perService {
			args = append(args, "-per-service", "-own-client")
		}
		if cfg.cache {
			args = append(args, "-cache")
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		p := &fleetProc{cmd: cmd, stdin: stdin, first: i * per, n: n, errs: map[int]string{},
			changes: map[int][]fleetChange{}, done: make(chan struct{})}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go p.scan(stdout)
		procs[i] = p
	}
	t.Cleanup(func() { stopFleet(procs) })

	// Every watcher ready (or, refused, reported).
	settled := func() bool {
		for _, p := range procs {
			p.mu.Lock()
			ok := !p.ready.IsZero() || (want429 && len(p.errs) > 0)
			p.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "every watcher ready", settled)
	var last time.Time
	ready := 0
	for _, p := range procs {
		if !p.ready.IsZero() {
			ready += p.n
			last = maxTime(last, p.ready)
		}
	}
	if !last.IsZero() {
		t.Logf("%s: %d of %d watchers in %d processes ready %s after the first process started",
			cfg.name, ready, cfg.watchers, cfg.processes, last.Sub(start).Round(time.Millisecond))
	}
	return agent, procs
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func stopFleet(procs []*fleetProc) {
	for _, p := range procs {
		if p != nil && p.stdin != nil {
			_ = p.stdin.Close()
		}
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		_ = p.cmd.Wait()
	}
}

// churnFleet flips one instance's check in every service per round, waits
// until every watcher has seen the round's instance count, and logs the
// update latencies (change written -> watcher's new snapshot) and the
// agent's CPU time over the churn. Every watcher must see every round.
func churnFleet(t *testing.T, cfg fleetConfig, agent *consultest.Agent, procs []*fleetProc) {
	t.Helper()
	client := agent.Client()
	cpu0, cpuErr := agent.CPUTime()
	wall0 := time.Now()
	var lat []time.Duration
	for r := range cfg.rounds {
		status, want := api.HealthCritical, cfg.instances-1
		if r%2 == 1 {
			status, want = api.HealthPassing, cfg.instances
		}
		written := make([]time.Time, cfg.services)
		for s := range cfg.services {
			written[s] = time.Now()
			setFleetCheck(t, client, s, 0, status)
		}
		round := r
		waitFor(t, 60*time.Second, fmt.Sprintf("round %d seen by every watcher", r), func() bool {
			for _, p := range procs {
				p.mu.Lock()
				for w := range p.n {
					ch := p.changes[w]
					// changes[0] is the first answer.
					if len(ch) <= round+1 || ch[round+1].instances != want {
						p.mu.Unlock()
						return false
					}
				}
				p.mu.Unlock()
			}
			return true
		})
		for _, p := range procs {
			p.mu.Lock()
			for w := range p.n {
				s := (p.first + w) % cfg.services
				lat = append(lat, p.changes[w][round+1].at.Sub(written[s]))
			}
			p.mu.Unlock()
		}
		time.Sleep(250 * time.Millisecond) // let the agent settle between rounds
	}
	wall := time.Since(wall0)
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	cpu := "unknown"
	if cpu1, err := agent.CPUTime(); err == nil && cpuErr == nil {
		used := cpu1 - cpu0
		cpu = fmt.Sprintf("%s over %s (%.1f%% of a core; %s per change of %d watchers)", used, wall.Round(time.Millisecond),
			100*used.Seconds()/wall.Seconds(), (used / time.Duration(cfg.rounds*cfg.services)).Round(time.Microsecond), cfg.watchers/cfg.services)
	}
	t.Logf("%s: update latency over %d updates: p50 %s p99 %s max %s; agent CPU %s",
		cfg.name, len(lat), pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond), cpu)
}

// idleCPU logs the agent's CPU time over d with nothing changing.
func idleCPU(t *testing.T, name string, agent *consultest.Agent, d time.Duration) {
	t.Helper()
	c0, err := agent.CPUTime()
	if err != nil {
		t.Logf("agent CPU: %v", err)
		return
	}
	time.Sleep(d)
	c1, _ := agent.CPUTime()
	t.Logf("%s: idle agent CPU %s over %s", name, c1-c0, d)
}

// fleetStats checks what each process reports when it stops: the most
// connections its watches held at once.
func fleetStats(t *testing.T, procs []*fleetProc) (maxConns, refused, answers, feedAnswers int) {
	t.Helper()
	stopFleet(procs)
	for _, p := range procs {
		<-p.done
		p.mu.Lock()
		var c, r, u, a, fa int
		if _, err := fmt.Sscan(p.stats, &c, &r, &u, &a, &fa); err != nil {
			t.Errorf("process %d stats %q: %v", p.first, p.stats, err)
		}
		p.mu.Unlock()
		maxConns = max(maxConns, c)
		refused += r
		answers += a
		feedAnswers += fa
	}
	return maxConns, refused, answers, feedAnswers
}

// Watchers spread over several processes on one host share the agent's
// per-address connection limit; with the shared feed each process holds at
// most feedConns connections whatever it watches, so every watcher is
// served under a limit that one blocking query per watched service would
// exceed five times over (200 watchers of 20 services in 5 processes: 200
// connections before the feed, at most 30 with it, limit 40). The test
// asserts that every watcher becomes ready and sees every change, and
// that no process held more than feedConns connections; it logs the
// figures (readiness time, update latency, agent CPU), which it does not
// judge. GRAYLANE_FLEET=1 runs the full measurement instead, 1,000 watchers
// in 20 processes against a stock agent in several configurations:
//
//	GRAYLANE_FLEET=1 go test -count=1 -timeout 20m -run 'TestIntegrationFleet$' -v ./discovery
func TestIntegrationFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; not in -short")
	}
	cfgs := []fleetConfig{{name: "feed, 200 watchers, limit 40", services: 20, instances: 10, watchers: 200, processes: 5, limit: 40, rounds: 4}}
	if os.Getenv("GRAYLANE_FLEET") == "1" {
		cfgs = []fleetConfig{
			{name: "feed", services: 20, instances: 10, watchers: 1000, processes: 20, rounds: 10},
			{name: "feed, agent cache", services: 20, instances: 10, watchers: 1000, processes: 20, cache: true, rounds: 10},
			{name: "feed, streaming off", services: 20, instances: 10, watchers: 1000, processes: 20, hcl: "use_streaming_backend = false", rounds: 10},
			{name: "per service (before), limit 2000", services: 20, instances: 10, watchers: 1000, processes: 20, limit: 2000, perService: true, rounds: 10},
		}
	}
	for _, cfg := range cfgs {
		t.Run(cfg.name, func(t *testing.T) {
			agent, procs := runFleet(t, cfg, false)
			idleCPU(t, cfg.name, agent, 3*time.Second)
			churnFleet(t, cfg, agent, procs)
			conns, refused, answers, feedAnswers := fleetStats(t, procs)
			t.Logf("%s: at most %d connections per process, %d refused requests, %d answers (%d of them to the feed)",
				cfg.name, conns, refused, answers, feedAnswers)
			if !cfg.perService && conns > feedConns {
				t.Errorf("a process held %d connections at once, want at most %d", conns, feedConns)
			}
			if refused != 0 {
				t.Errorf("%d requests refused under the limit", refused)
			}
		})
	}
}

// Under a limit the fleet exceeds, the watches that cannot be served say
// so: each is either ready or reports an error naming the agent's limit
// (errors.Is ErrAgentLimit), and some are refused.
func TestIntegrationFleetOverLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; not in -short")
	}
	cfg := fleetConfig{name: "feed, 160 watchers, limit 10", services: 20, instances: 2, watchers: 160, processes: 8, limit: 10}
	if os.Getenv("GRAYLANE_FLEET") == "1" {
		cfg = fleetConfig{name: "feed, 1000 watchers, limit 10", services: 20, instances: 10, watchers: 1000, processes: 20, limit: 10}
	}
	_, procs := runFleet(t, cfg, true)
	readyW, refusedW := 0, 0
	for _, p := range procs {
		p.mu.Lock()
		if !p.ready.IsZero() {
			readyW += p.n
		} else {
			refusedW += p.n
			if p.limitErr == 0 {
				t.Errorf("process %d: watchers not ready without an agent-limit error: %v", p.first, p.errs)
			}
			for _, e := range p.errs {
				if !strings.Contains(e, "limits.http_max_conns_per_client") {
					t.Errorf("process %d: error does not name the agent setting: %s", p.first, e)
				}
				break
			}
		}
		p.mu.Unlock()
	}
	t.Logf("%s: %d watchers ready, %d refused and reported", cfg.name, readyW, refusedW)
	if refusedW == 0 {
		t.Fatalf("%d processes of up to %d connections each all served under a limit of 10", cfg.processes, feedConns)
	}
}
