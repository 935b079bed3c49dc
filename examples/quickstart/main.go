// Command quickstart is graylane's main demo: blue/green and gray routing
// that holds across a whole call chain.
//
//	go run ./examples/quickstart                  # embedded in-memory registry
//	go run ./examples/quickstart -consul 127.0.0.1:8500   # a real Consul agent (or CONSUL_HTTP_ADDR)
//
// It starts three services in this process, each on its own loopback port
// and each with its own balancer, as separate processes would:
//
//	client -> gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1)
//
// The gateway is the entry: it holds seed 002's "mixed" orchestration spec
// (blue/green on xyz=1 and xyz=2, gray 90/10 on xyz=3, 70/30 on xyz=4,
// 100/0 otherwise), which graylane expands against the live versions of
// svc-a and svc-b into a full rule. The gateway decides each request's route
// once; svc-a and svc-b only follow the n-d-version header it sends down.
// Then the spec's built-in header (xyz: 1) is restored, which pins every
// request to the old versions, whatever it sends.
//
// The program prints what served each hop and checks it: it exits 1 if any
// chain mixes versions or a split is off the rule's weights.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
)

// mixedSpec is seed 002's mixed example without its built-in header.
const mixedSpec = `service:
  - svc-a
  - svc-b
blueGreen:
  - expression: "#H['xyz'] == '1'"
    route: green
  - expression: "#H['xyz'] == '2'"
    route: blue
gray:
  - expression: "#H['xyz'] == '3'"
    weight: [90, 10]
  - expression: "#H['xyz'] == '4'"
    weight: [70, 30]
  - weight: [100, 0]
`

// pinnedSpec is the same spec with the seed's built-in header restored.
const pinnedSpec = mixedSpec + `header:
  xyz: 1
`

const ruleKey = "graylane/quickstart/gateway"

func main() {
	consulAddr := flag.String("consul", os.Getenv("CONSUL_HTTP_ADDR"), "Consul agent address; empty runs on the embedded registry")
	n := flag.Int("n", 2000, "requests per gray case")
	verbose := flag.Bool("v", false, "log what the balancers do")
	flag.Parse()

	log := zap.NewNop()
	if *verbose {
		log, _ = zap.NewDevelopment()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *consulAddr, *n, log); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// world is where the demo's services find each other and their rule: the
// embedded registry, or a Consul agent.
type world struct {
	registry discovery.Registry
	rules    *discovery.RuleWatch
	publish  func(spec string) error
	register func(ctx context.Context, service, version string, addr *net.TCPAddr) error
	close    func()
	name     string
}

func embedded() *world {
	reg := discovery.NewStatic()
	rules := discovery.NewStaticRules(nil)
	return &world{
		name:     "embedded registry",
		registry: reg,
		rules:    rules,
		publish:  func(spec string) error { return rules.Set([]byte(spec)) },
		register: func(_ context.Context, service, version string, addr *net.TCPAddr) error {
			return reg.Add(discovery.Instance{
				ID:      service + "-" + version + "-" + strconv.Itoa(addr.Port),
				Service: service, Address: addr.IP.String(), Port: addr.Port, Version: version,
			})
		},
		close: func() { rules.Close(); reg.Close() },
	}
}

func withConsul(addr string, log *zap.Logger) (*world, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := client.Status().Leader(); err != nil {
		return nil, fmt.Errorf("consul at %s: %w", addr, err)
	}
	opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
	reg := discovery.NewConsul(client, opts...)
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: ruleKey}, opts...)
	var mu sync.Mutex
	var registrars []*discovery.Registrar
	return &world{
		name:     "Consul at " + addr,
		registry: reg,
		rules:    rules,
		publish: func(spec string) error {
			_, err := client.KV().Put(&api.KVPair{Key: ruleKey, Value: []byte(spec)}, nil)
			return err
		},
		register: func(ctx context.Context, service, version string, a *net.TCPAddr) error {
			r, err := discovery.Register(ctx, client, discovery.Registration{
				Service: service, Address: a.IP.String(), Port: a.Port, Version: version,
			}, discovery.WithLogger(log))
			if err != nil {
				return err
			}
			mu.Lock()
			registrars = append(registrars, r)
			mu.Unlock()
			return nil
		},
		close: func() {
			rules.Close()
			reg.Close()
			for _, r := range registrars {
				r.Close()
			}
			client.KV().Delete(ruleKey, nil) //nolint:errcheck // best effort clean-up
		},
	}, nil
}

// server is one in-process service instance.
type server struct {
	srv  *http.Server
	b    *balancer.Balancer
	addr string
}

func run(ctx context.Context, out io.Writer, consulAddr string, n int, log *zap.Logger) error {
	w := embedded()
	if consulAddr != "" {
		var err error
		if w, err = withConsul(consulAddr, log); err != nil {
			return err
		}
	}
	defer w.close()

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.srv.Close()
			s.b.Close()
		}
	}()
	start := func(service, version, next string, opts ...balancer.Option) error {
		b, err := balancer.New(w.registry, append(opts, balancer.WithLogger(log))...)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Close()
			return err
		}
		name := service
		if version != "" {
			name += "@" + version
		}
		s := &server{b: b, addr: ln.Addr().String(), srv: &http.Server{Handler: b.Middleware(hop(name, next, b.Client())), ReadHeaderTimeout: 5 * time.Second}}
		servers = append(servers, s)
		go s.srv.Serve(ln) //nolint:errcheck // ends with Close
		if service == "gateway" {
			return nil // the client calls the gateway directly
		}
		return w.register(ctx, service, version, ln.Addr().(*net.TCPAddr))
	}
	for _, v := range []string{"1.0", "1.1"} {
		if err := start("svc-b", v, ""); err != nil {
			return err
		}
		if err := start("svc-a", v, "svc-b"); err != nil {
			return err
		}
	}
	// The gateway is the entry: it decides each request's route from the
	// rule and ignores n-d-* headers that clients send (trusted edge).
	if err := start("gateway", "", "svc-a",
		balancer.WithEntry(true), balancer.WithTrustedEdge(true), balancer.WithRuleSource(w.rules)); err != nil {
		return err
	}
	gateway := servers[len(servers)-1]
	gatewayURL := "http://" + gateway.addr

	fmt.Fprintf(out, "graylane quickstart on the %s\n", w.name)
	fmt.Fprintln(out, "chain: client -> gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1)")
	fmt.Fprintln(out)

	if err := w.publish(mixedSpec); err != nil {
		return fmt.Errorf("publish spec: %w", err)
	}
	if err := waitRule(ctx, gateway.b, false); err != nil {
		return err
	}
	fmt.Fprintln(out, "Seed 002's mixed spec, without its built-in header:")
	cases := []testCase{
		{name: "xyz=1", xyz: "1", n: n / 10, want: 0, rule: "blue-green: green (old)"},
		{name: "xyz=2", xyz: "2", n: n / 10, want: 100, rule: "blue-green: blue (new)"},
		{name: "xyz=3", xyz: "3", n: n, want: 10, rule: "gray 90/10"},
		{name: "xyz=4", xyz: "4", n: n, want: 30, rule: "gray 70/30"},
		{name: "no header", n: n / 10, want: 0, rule: "gray default 100/0"},
	}
	failed := table(ctx, out, gatewayURL, cases)

	if err := w.publish(pinnedSpec); err != nil {
		return fmt.Errorf("publish spec: %w", err)
	}
	if err := waitRule(ctx, gateway.b, true); err != nil {
		return err
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "The same spec with its built-in header (xyz: 1) restored: every request is pinned to green.")
	pinned := []testCase{
		{name: "xyz=2", xyz: "2", n: n / 10, want: 0, rule: "header xyz=1 wins"},
		{name: "xyz=3", xyz: "3", n: n / 10, want: 0, rule: "header xyz=1 wins"},
		{name: "no header", n: n / 10, want: 0, rule: "header xyz=1 wins"},
	}
	failed = table(ctx, out, gatewayURL, pinned) || failed
	if failed {
		return errors.New("some chains did not follow the rule (see the table)")
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Every chain stayed on one side; splits match the rule.")
	return nil
}

// hop is a service's handler: it calls next (if any) through its balancer
// with the request's context, which carries the route, and reports the
// chain that served the request, e.g. "svc-a@1.1 > svc-b@1.1".
func hop(name, next string, client *http.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if next == "" {
			io.WriteString(w, name) //nolint:errcheck // demo
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+next+"/", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, name+": "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			http.Error(w, name+": "+next+" answered "+resp.Status+": "+string(body), http.StatusBadGateway)
			return
		}
		chain := string(body)
		if name != "gateway" {
			chain = name + " > " + chain
		}
		io.WriteString(w, chain) //nolint:errcheck // demo
	})
}

// waitRule waits until the gateway applies the published spec (pinned: the
// one with a built-in header).
func waitRule(ctx context.Context, b *balancer.Balancer, pinned bool) error {
	for {
		if r := b.Rule(); r != nil && len(r.Release.Routes) == 2 && (len(r.Release.Header) > 0) == pinned {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the gateway did not apply the spec: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

type testCase struct {
	name, xyz string
	n         int
	want      float64 // expected share of chains on 1.1, in percent
	rule      string
}

// table sends each case's requests through the gateway and prints the chains
// seen. It reports whether any check failed.
func table(ctx context.Context, out io.Writer, url string, cases []testCase) (failed bool) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\trule\trequests\tchains seen (svc-a > svc-b)\ton 1.1\twant\tcheck")
	client := &http.Client{Timeout: 10 * time.Second}
	for _, c := range cases {
		chains, errs := send(ctx, client, url, c)
		newer, mixed := 0, 0
		var seen []string
		for chain, count := range chains {
			seen = append(seen, fmt.Sprintf("%s: %d", strings.ReplaceAll(chain, "svc-", ""), count))
			switch chain {
			case "svc-a@1.1 > svc-b@1.1":
				newer += count
			case "svc-a@1.0 > svc-b@1.0":
			default:
				mixed += count
			}
		}
		sort.Strings(seen)
		share := 100 * float64(newer) / float64(c.n)
		ok := errs == 0 && mixed == 0 && math.Abs(share-c.want) <= tolerance(c.want, c.n)
		verdict := "ok"
		if !ok {
			failed = true
			verdict = fmt.Sprintf("FAIL (%d errors, %d mixed chains)", errs, mixed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f%%\t%.0f%%\t%s\n", c.name, c.rule, c.n, strings.Join(seen, ", "), share, c.want, verdict)
	}
	tw.Flush()
	return failed
}

// tolerance is how far, in percentage points, an observed split of n draws
// may fall from want: five standard deviations of the binomial, so a correct
// balancer practically never fails the check, and exact for 0% and 100%.
func tolerance(want float64, n int) float64 {
	p := want / 100
	return 100 * 5 * math.Sqrt(p*(1-p)/float64(n))
}

// send makes c.n requests with 8 concurrent clients and counts the chains.
func send(ctx context.Context, client *http.Client, url string, c testCase) (map[string]int, int) {
	var mu sync.Mutex
	chains := map[string]int{}
	errs := 0
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				chain, err := call(ctx, client, url, c.xyz)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					chains[chain]++
				}
				mu.Unlock()
			}
		}()
	}
	for range c.n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return chains, errs
}

func call(ctx context.Context, client *http.Client, url, xyz string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if xyz != "" {
		req.Header.Set("xyz", xyz)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return string(body), nil
}
