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
// The gateway is the entry: it holds the mixed example of Nepxion's
// orchestration guide ("全链路智能编排" in the Discovery wiki), a spec
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
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/rule"
)

// mixedSpec is the mixed example of Nepxion's orchestration guide without its
// built-in header.
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

// pinnedSpec is the same spec with the guide's built-in header restored.
const pinnedSpec = mixedSpec + `header:
  xyz: 1
`

const ruleKey = "graylane/quickstart/gateway"

func main() {
	consulAddr := flag.String("consul", os.Getenv("CONSUL_HTTP_ADDR"), demo.ConsulUsage)
	n := flag.Int("n", 2000, "requests per gray case")
	demo.Main("quickstart", 50*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, *consulAddr, *n, log)
	})
}

func run(ctx context.Context, out io.Writer, consulAddr string, n int, log *zap.Logger) error {
	// On Consul, the registry watches the agent's health API, the gateway's
	// rule lives in KV, and each instance registers itself.
	w, err := demo.Open(consulAddr, func(client *api.Client) demo.Consul {
		opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
		return demo.Consul{
			Registry: discovery.NewConsul(client, opts...),
			Rules:    discovery.NewConsulRules(client, discovery.RuleKeys{Service: ruleKey}, opts...),
			RuleKey:  ruleKey,
			Register: func(ctx context.Context, r discovery.Registration) (*discovery.Registrar, error) {
				return discovery.Register(ctx, client, r, discovery.WithLogger(log))
			},
		}
	})
	if err != nil {
		return err
	}
	defer w.Close()
	var fleet demo.Fleet
	defer fleet.Close()

	// start runs one service instance with its own balancer, as its own
	// process would. Its handler calls next through the balancer's client.
	start := func(service, version, next string, opts ...balancer.Option) (*balancer.Balancer, string, error) {
		b, err := balancer.New(w.Registry, append(opts, balancer.WithLogger(log))...)
		if err != nil {
			return nil, "", err
		}
		fleet.Defer(func() { b.Close() })
		self := ""
		if version != "" {
			self = service + "@" + version
		}
		addr, err := fleet.Serve(b.Middleware(demo.Hop(self, next, b.Client())))
		if err != nil {
			return nil, "", err
		}
		if service == "gateway" {
			return b, addr.String(), nil // the client calls the gateway directly
		}
		return b, addr.String(), w.Register(ctx, discovery.Registration{
			Service: service, Version: version, Address: addr.IP.String(), Port: addr.Port,
		})
	}
	for _, v := range []string{"1.0", "1.1"} {
		if _, _, err := start("svc-b", v, ""); err != nil {
			return err
		}
		if _, _, err := start("svc-a", v, "svc-b"); err != nil {
			return err
		}
	}
	// The gateway is the entry: it decides each request's route from the
	// rule and ignores n-d-* headers that clients send (trusted edge).
	gateway, gatewayAddr, err := start("gateway", "", "svc-a",
		balancer.WithEntry(true), balancer.WithTrustedEdge(true), balancer.WithRuleSource(w.Rules))
	if err != nil {
		return err
	}
	gatewayURL := "http://" + gatewayAddr

	fmt.Fprintf(out, "graylane quickstart on the %s\n", w.Name)
	fmt.Fprintln(out, "chain: client -> gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1)")
	fmt.Fprintln(out)

	if err := w.Publish(mixedSpec); err != nil {
		return fmt.Errorf("publish spec: %w", err)
	}
	if err := demo.WaitRule(ctx, gateway, expanded(false)); err != nil {
		return err
	}
	fmt.Fprintln(out, "The orchestration guide's mixed spec, without its built-in header:")
	cases := []testCase{
		{name: "xyz=1", xyz: "1", n: n / 10, want: 0, rule: "blue-green: green (old)"},
		{name: "xyz=2", xyz: "2", n: n / 10, want: 100, rule: "blue-green: blue (new)"},
		{name: "xyz=3", xyz: "3", n: n, want: 10, rule: "gray 90/10"},
		{name: "xyz=4", xyz: "4", n: n, want: 30, rule: "gray 70/30"},
		{name: "no header", n: n / 10, want: 0, rule: "gray default 100/0"},
	}
	failed := table(ctx, out, gatewayURL, cases)

	if err := w.Publish(pinnedSpec); err != nil {
		return fmt.Errorf("publish spec: %w", err)
	}
	if err := demo.WaitRule(ctx, gateway, expanded(true)); err != nil {
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

// expanded reports whether the gateway applies the published spec, expanded
// into two routes (pinned: the one with a built-in header).
func expanded(pinned bool) func(*rule.Rule) bool {
	return func(r *rule.Rule) bool {
		return len(r.Release.Routes) == 2 && (len(r.Release.Header) > 0) == pinned
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
	defer client.CloseIdleConnections()
	for _, c := range cases {
		tally := demo.Send(c.n, func(int) (string, error) {
			return demo.Get(ctx, client, url, map[string]string{"xyz": c.xyz})
		})
		chains, errs := tally.Counts(), len(tally.Errors())
		newer, mixed := 0, 0
		for chain, count := range chains {
			switch chain {
			case "svc-a@1.1 > svc-b@1.1":
				newer += count
			case "svc-a@1.0 > svc-b@1.0":
			default:
				mixed += count
			}
		}
		share := 100 * float64(newer) / float64(c.n)
		ok := errs == 0 && mixed == 0 && math.Abs(share-c.want) <= demo.Tolerance(c.want, c.n)
		verdict := "ok"
		if !ok {
			failed = true
			verdict = fmt.Sprintf("FAIL (%d errors, %d mixed chains)", errs, mixed)
		}
		seen := strings.ReplaceAll(demo.Chains(chains), "svc-", "")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f%%\t%.0f%%\t%s\n", c.name, c.rule, c.n, seen, share, c.want, verdict)
	}
	tw.Flush()
	return failed
}
