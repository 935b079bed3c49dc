// Command gateway shows a gateway that decides each request's route at the
// edge, with a Nepxion Discovery XML rule, and why clients cannot route
// themselves.
//
//	go run ./examples/gateway                          # embedded in-memory registry
//	go run ./examples/gateway -consul 127.0.0.1:8500   # a real Consul agent (or CONSUL_HTTP_ADDR)
//
// The chain, every service in two regions (us, eu) and two versions:
//
//	client -> gateway (two replicas) -> order (1.0, 1.1 x us, eu) -> stock (1.0, 1.1 x us, eu)
//
// The gateways are built with
//
//	balancer.New(registry, balancer.WithTrustedEdge(true), balancer.WithRuleSource(rules))
//
// WithTrustedEdge makes each gateway an entry (WithEntry) that drops every
// n-d-* header a client sends before the rule decides. The rule (ruleXML
// below, as a Nepxion user would write it) decides version and region on
// their own: QA testers get 1.1, everyone else is split 80/20 between 1.0
// and 1.1 by a hash of their user-id (sticky gray, so a user stays on one
// side, whichever gateway replica takes the request); users from Germany
// and France are served in eu, everyone else in us. order and stock follow
// the n-d-* headers the gateway sends down.
//
// With -consul the instances register with the agent and the rule is
// published to KV under Nepxion's key layout ("<group>-<service>"); both are
// removed at the end.
//
// The program prints the chains that served each kind of request and checks
// them: it exits 1 if a chain mixes versions or regions, a client routed
// itself, a user changed sides, or a split is off the rule's weights.
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
	"slices"
	"sort"
	"strconv"
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

// ruleXML is the gateway's release rule. sticky="#H['user-id']" is
// graylane's one extension to Nepxion's format: without it the gray split is
// drawn at random per request.
const ruleXML = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <strategy>
        <version>{"order":"1.0","stock":"1.0"}</version>
        <region>us</region>
    </strategy>
    <strategy-release>
        <conditions type="blue-green">
            <condition id="qa" expression="#H['x-team'] == 'qa'" version-id="new"/>
            <condition id="eu-users" expression="#H['x-country'] == 'de' || #H['x-country'] == 'fr'" region-id="eu"/>
        </conditions>
        <conditions type="gray" sticky="#H['user-id']">
            <condition id="canary" version-id="old=80;new=20"/>
        </conditions>
        <routes>
            <route id="old" type="version">{"order":"1.0","stock":"1.0"}</route>
            <route id="new" type="version">{"order":"1.1","stock":"1.1"}</route>
            <route id="eu" type="region">{"order":"eu","stock":"eu"}</route>
        </routes>
    </strategy-release>
</rule>
`

// ruleKeys is where the gateway's rule lives in Consul KV, as Nepxion lays
// it out for group "graylane" and service "gateway".
var ruleKeys = discovery.NepxionRuleKeys("graylane", "gateway")

func main() {
	consulAddr := flag.String("consul", os.Getenv("CONSUL_HTTP_ADDR"), demo.ConsulUsage)
	n := flag.Int("n", 1000, "requests (or users) per gray case")
	demo.Main("gateway", 50*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, *consulAddr, *n, log)
	})
}

func run(ctx context.Context, out io.Writer, consulAddr string, n int, log *zap.Logger) error {
	// Check the rule before publishing it: a bad rule is rejected with the
	// line and column of the problem.
	if _, err := rule.Parse([]byte(ruleXML)); err != nil {
		return err
	}
	// On Consul, the registry watches the agent's health API, the gateways'
	// rule lives in KV under Nepxion's keys, and each instance registers
	// itself with its version and region.
	w, err := demo.Open(consulAddr, func(client *api.Client) demo.Consul {
		opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
		return demo.Consul{
			Registry: discovery.NewConsul(client, opts...),
			Rules:    discovery.NewConsulRules(client, ruleKeys, opts...),
			RuleKey:  ruleKeys.Service,
			Register: func(ctx context.Context, r discovery.Registration) (*discovery.Registrar, error) {
				return discovery.Register(ctx, client, r, opts...)
			},
		}
	})
	if err != nil {
		return err
	}
	defer w.Close()
	where := w.Name
	if consulAddr != "" {
		where += ", rule in KV key " + ruleKeys.Service
	}
	var fleet demo.Fleet
	defer fleet.Close()

	// start runs one service instance with its own balancer, as its own
	// process would, and returns its address. self names it in the chains
	// ("1.1/eu"); entries, which only decide, pass "". An edge's handler
	// checks that no client's n-d-* header got through.
	start := func(self, next string, edge bool, opts ...balancer.Option) (*balancer.Balancer, *net.TCPAddr, error) {
		b, err := balancer.New(w.Registry, append(opts, balancer.WithLogger(log))...)
		if err != nil {
			return nil, nil, err
		}
		fleet.Defer(func() { b.Close() })
		client := b.Client()
		fleet.Defer(client.CloseIdleConnections)
		h := demo.Hop(self, next, client)
		if edge {
			h = noRouteHeaders(h)
		}
		addr, err := fleet.Serve(b.Middleware(h))
		return b, addr, err
	}
	for _, service := range []struct{ name, next string }{{"stock", ""}, {"order", "stock"}} {
		for _, version := range []string{"1.0", "1.1"} {
			for _, region := range []string{"us", "eu"} {
				_, addr, err := start(version+"/"+region, service.next, false)
				if err != nil {
					return err
				}
				if err := w.Register(ctx, discovery.Registration{
					Service: service.name, Version: version, Region: region, Address: addr.IP.String(), Port: addr.Port,
				}); err != nil {
					return err
				}
			}
		}
		if err := w.Wait(ctx, service.name, 4); err != nil {
			return err
		}
	}
	if err := w.Publish(ruleXML); err != nil {
		return fmt.Errorf("publish rule: %w", err)
	}
	var gateways []string
	for range 2 {
		b, addr, err := start("", "order", true, balancer.WithTrustedEdge(true), balancer.WithRuleSource(w.Rules))
		if err != nil {
			return err
		}
		if err := demo.WaitRule(ctx, b, nil); err != nil {
			return err
		}
		gateways = append(gateways, "http://"+addr.String()+"/")
	}
	// For contrast: an entry inside the trusted network (WithEntry without
	// WithTrustedEdge), where routing headers that arrive win over the rule.
	b, addr, err := start("", "order", false, balancer.WithEntry(true), balancer.WithRuleSource(w.Rules))
	if err != nil {
		return err
	}
	if err := demo.WaitRule(ctx, b, nil); err != nil {
		return err
	}
	internal := []string{"http://" + addr.String() + "/"}

	fmt.Fprintf(out, "graylane gateway on the %s\n", where)
	fmt.Fprintln(out, "chain: client -> gateway (2 replicas, trusted edge) -> order -> stock, each 1.0 and 1.1 in us and eu")
	fmt.Fprintln(out, "       (and, for contrast, an internal entry without WithTrustedEdge)")
	fmt.Fprintln(out, "rule: x-team=qa -> 1.1; others 80/20 sticky by user-id; x-country de|fr -> eu, others us")
	fmt.Fprintln(out)

	cases := []demoCase{
		{name: "client sends n-d-version: 1.1", note: "ignored: the rule's 80/20 decides",
			header: header{"n-d-version": "1.1", "n-d-region": "eu"}, n: n, want: 20, region: "us"},
		{name: "the same, at an internal entry", note: "obeyed: headers win (no WithTrustedEdge)", internal: true,
			header: header{"n-d-version": "1.1", "n-d-region": "eu"}, n: n / 10, want: 100, region: "eu"},
		{name: "x-team: qa", note: "blue-green: 1.1", header: header{"x-team": "qa"}, n: n / 10, want: 100, region: "us"},
		{name: "x-country: de", note: "region eu, 80/20", header: header{"x-country": "de"}, n: n, want: 20, region: "eu"},
		{name: "user-id u0..u" + strconv.Itoa(n/2-1) + ", 4 calls each", note: "sticky 80/20 by user",
			users: n / 2, perUser: 4, want: 20, region: "us"},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\trule\trequests\tchains seen (order > stock)\ton 1.1\twant\tcheck")
	failed := false
	for _, c := range cases {
		targets := gateways
		if c.internal {
			targets = internal
		}
		failed = c.report(tw, c.send(ctx, client, targets)) || failed
	}
	tw.Flush()
	if failed {
		return errors.New("some requests did not follow the rule (see the table)")
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "No client routed itself through the gateway; every chain stayed on one version and region; no user changed sides.")
	return nil
}

type header map[string]string

// demoCase is one kind of request the program sends through the gateways.
type demoCase struct {
	name, note string
	header     header
	n          int // anonymous requests, or
	users      int // users, each sending
	perUser    int // this many requests, alternating between gateways
	want       float64
	region     string
	internal   bool // send to the internal entry instead of the gateways
}

// outcome is what a case's requests saw.
type outcome struct {
	chains   map[string]int // "1.1/us > 1.1/us" -> count
	errs     []string
	newer    int // requests (or users) served by 1.1
	total    int
	switched int // users served by both versions
}

func (c *demoCase) send(ctx context.Context, client *http.Client, gateways []string) outcome {
	var chains demo.Tally
	// Each job is one anonymous request or one user's requests; its
	// outcome is the versions that served it, e.g. "1.0" or "1.0 1.1".
	sides := demo.Send(max(c.n, c.users), func(job int) (string, error) {
		h := header{}
		for k, v := range c.header {
			h[k] = v
		}
		calls := 1
		if c.users > 0 {
			h["user-id"] = "u" + strconv.Itoa(job)
			calls = c.perUser
		}
		seen := map[string]bool{}
		for i := range calls {
			chain, err := demo.Get(ctx, client, gateways[(job+i)%len(gateways)], h)
			chains.Add(chain, err)
			if err == nil {
				seen[strings.SplitN(chain, "/", 2)[0]] = true
			}
		}
		versions := make([]string, 0, len(seen))
		for v := range seen {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		return strings.Join(versions, " "), nil
	})
	o := outcome{chains: chains.Counts(), errs: chains.Errors()}
	for side, count := range sides.Counts() {
		versions := strings.Fields(side)
		o.total += count
		if slices.Contains(versions, "1.1") {
			o.newer += count
		}
		if len(versions) > 1 {
			o.switched += count
		}
	}
	return o
}

// report prints the case's row and reports whether a check failed.
func (c *demoCase) report(tw io.Writer, o outcome) (failed bool) {
	var problems []string
	for chain := range o.chains {
		hops := strings.Split(chain, " > ")
		if len(hops) != 2 || hops[0] != hops[1] {
			problems = append(problems, "mixed chain "+chain)
		} else if !strings.HasSuffix(hops[0], "/"+c.region) {
			problems = append(problems, "served outside "+c.region+": "+chain)
		}
	}
	sort.Strings(problems)
	if len(o.errs) > 0 {
		problems = append(problems, fmt.Sprintf("%d errors, first: %s", len(o.errs), o.errs[0]))
	}
	if o.switched > 0 {
		problems = append(problems, fmt.Sprintf("%d users changed sides", o.switched))
	}
	share := 100 * float64(o.newer) / float64(o.total)
	if math.Abs(share-c.want) > demo.Tolerance(c.want, o.total) {
		problems = append(problems, fmt.Sprintf("%.1f%% on 1.1, want %.0f%%", share, c.want))
	}
	verdict := "ok"
	if len(problems) > 0 {
		verdict = "FAIL: " + strings.Join(problems, "; ")
	}
	requests := strconv.Itoa(o.total)
	if c.users > 0 {
		requests = fmt.Sprintf("%d users x %d", o.total, c.perUser)
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\t%.0f%%\t%s\n", c.name, c.note, requests, demo.Chains(o.chains), share, c.want, verdict)
	return len(problems) > 0
}

// noRouteHeaders wraps a gateway's handler, behind the balancer's
// middleware, and fails the request if any n-d-* header reached it: a
// trusted edge drops them before the handler runs.
func noRouteHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), balancer.HeaderPrefix) {
				http.Error(w, "gateway: the client's "+h+" header got through", http.StatusInternalServerError)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
