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
	consulAddr := flag.String("consul", os.Getenv("CONSUL_HTTP_ADDR"), "Consul agent address; empty runs on the embedded registry")
	n := flag.Int("n", 1000, "requests (or users) per gray case")
	verbose := flag.Bool("v", false, "log what the balancers do")
	flag.Parse()
	log := zap.NewNop()
	if *verbose {
		log, _ = zap.NewDevelopment()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *consulAddr, *n, log); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, consulAddr string, n int, log *zap.Logger) error {
	// Check the rule before publishing it: a bad rule is rejected with the
	// line and column of the problem.
	if _, err := rule.Parse([]byte(ruleXML)); err != nil {
		return err
	}
	w, err := newWorld(ctx, consulAddr, log)
	if err != nil {
		return err
	}
	defer w.close()

	var servers []*http.Server
	var clients []*http.Client
	var balancers []*balancer.Balancer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		for _, c := range clients {
			c.CloseIdleConnections()
		}
		for _, b := range balancers {
			b.Close()
		}
	}()
	// start runs one service instance with its own balancer, as its own
	// process would, and returns its address.
	start := func(name, next string, opts ...balancer.Option) (*balancer.Balancer, *net.TCPAddr, error) {
		b, err := balancer.New(w.registry, append(opts, balancer.WithLogger(log))...)
		if err != nil {
			return nil, nil, err
		}
		balancers = append(balancers, b)
		client := b.Client()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		s := &http.Server{Handler: b.Middleware(hop(name, next, client)), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		clients = append(clients, client)
		go s.Serve(ln) //nolint:errcheck // ends with Close
		return b, ln.Addr().(*net.TCPAddr), nil
	}
	for _, service := range []struct{ name, next string }{{"stock", ""}, {"order", "stock"}} {
		for _, version := range []string{"1.0", "1.1"} {
			for _, region := range []string{"us", "eu"} {
				_, addr, err := start(service.name+"@"+version+"/"+region, service.next)
				if err != nil {
					return err
				}
				if err := w.register(ctx, service.name, version, region, addr); err != nil {
					return fmt.Errorf("register %s: %w", service.name, err)
				}
			}
		}
		if err := w.wait(ctx, service.name, 4); err != nil {
			return err
		}
	}
	if err := w.publish(ruleXML); err != nil {
		return fmt.Errorf("publish rule: %w", err)
	}
	var gateways []string
	for range 2 {
		b, addr, err := start("gateway", "order", balancer.WithTrustedEdge(true), balancer.WithRuleSource(w.rules))
		if err != nil {
			return err
		}
		if err := waitRule(ctx, b); err != nil {
			return err
		}
		gateways = append(gateways, "http://"+addr.String()+"/")
	}
	// For contrast: an entry inside the trusted network (WithEntry without
	// WithTrustedEdge), where routing headers that arrive win over the rule.
	b, addr, err := start("internal-entry", "order", balancer.WithEntry(true), balancer.WithRuleSource(w.rules))
	if err != nil {
		return err
	}
	if err := waitRule(ctx, b); err != nil {
		return err
	}
	internal := []string{"http://" + addr.String() + "/"}

	fmt.Fprintf(out, "graylane gateway on the %s\n", w.name)
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
	newer    int            // requests (or users) served by 1.1
	total    int
	errs     []string
	switched int // users served by both versions
}

func (c *demoCase) send(ctx context.Context, client *http.Client, gateways []string) outcome {
	o := outcome{chains: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
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
					chain, err := call(ctx, client, gateways[(job+i)%len(gateways)], h)
					mu.Lock()
					if err != nil {
						o.errs = append(o.errs, err.Error())
					} else {
						o.chains[chain]++
						seen[strings.SplitN(chain, "/", 2)[0]] = true
					}
					mu.Unlock()
				}
				mu.Lock()
				o.total++
				if seen["1.1"] {
					o.newer++
				}
				if len(seen) > 1 {
					o.switched++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range max(c.n, c.users) {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return o
}

// report prints the case's row and reports whether a check failed.
func (c *demoCase) report(tw io.Writer, o outcome) (failed bool) {
	var problems []string
	var seen []string
	for chain, count := range o.chains {
		seen = append(seen, fmt.Sprintf("%s: %d", chain, count))
		hops := strings.Split(chain, " > ")
		if len(hops) != 2 || hops[0] != hops[1] {
			problems = append(problems, "mixed chain "+chain)
		} else if !strings.HasSuffix(hops[0], "/"+c.region) {
			problems = append(problems, "served outside "+c.region+": "+chain)
		}
	}
	sort.Strings(seen)
	if len(o.errs) > 0 {
		problems = append(problems, fmt.Sprintf("%d errors, first: %s", len(o.errs), o.errs[0]))
	}
	if o.switched > 0 {
		problems = append(problems, fmt.Sprintf("%d users changed sides", o.switched))
	}
	share := 100 * float64(o.newer) / float64(o.total)
	if math.Abs(share-c.want) > tolerance(c.want, o.total) {
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
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\t%.0f%%\t%s\n", c.name, c.note, requests, strings.Join(seen, ", "), share, c.want, verdict)
	return len(problems) > 0
}

// tolerance is how far, in percentage points, an observed split of n draws
// may fall from want: five standard deviations of the binomial, so a correct
// balancer practically never fails the check, and exact for 0% and 100%.
func tolerance(want float64, n int) float64 {
	p := want / 100
	return 100 * 5 * math.Sqrt(p*(1-p)/float64(n))
}

// call sends one request to a gateway as an outside client and returns the
// chain that served it, e.g. "1.1/eu > 1.1/eu".
func call(ctx context.Context, client *http.Client, url string, h header) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	for k, v := range h {
		req.Header.Set(k, v)
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

// hop is a service's handler: it calls next (if any) with the inbound
// request's context, which carries the route, and answers with the chain
// that served the request, e.g. "1.1/eu > 1.1/eu" (entries, named without
// a version, add nothing: they only decide).
func hop(name, next string, client *http.Client) http.Handler {
	self := name[strings.IndexByte(name, '@')+1:]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for h := range r.Header {
			if name == "gateway" && strings.HasPrefix(strings.ToLower(h), balancer.HeaderPrefix) {
				// A trusted edge drops them before the handler runs.
				http.Error(w, "gateway: the client's "+h+" header got through", http.StatusInternalServerError)
				return
			}
		}
		if next == "" {
			io.WriteString(w, self) //nolint:errcheck // the client went away
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
		if strings.Contains(name, "@") { // entries only decide; they add no hop
			chain = self + " > " + chain
		}
		io.WriteString(w, chain) //nolint:errcheck // the client went away
	})
}

// waitRule waits until a gateway applies the published rule.
func waitRule(ctx context.Context, b *balancer.Balancer) error {
	for b.Rule() == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the gateway did not apply the rule: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// world is where the services find each other and the gateways their rule:
// the embedded registry, or a Consul agent.
type world struct {
	name     string
	registry discovery.Registry
	rules    *discovery.RuleWatch
	publish  func(doc string) error
	register func(ctx context.Context, service, version, region string, addr *net.TCPAddr) error
	close    func()
}

func newWorld(ctx context.Context, consulAddr string, log *zap.Logger) (*world, error) {
	if consulAddr == "" {
		reg := discovery.NewStatic()
		rules := discovery.NewStaticRules(nil)
		return &world{
			name:     "embedded registry",
			registry: reg,
			rules:    rules,
			publish:  func(doc string) error { return rules.Set([]byte(doc)) },
			register: func(_ context.Context, service, version, region string, a *net.TCPAddr) error {
				return reg.Add(discovery.Instance{
					Service: service, Version: version, Region: region, Address: a.IP.String(), Port: a.Port,
				})
			},
			close: func() { rules.Close(); reg.Close() },
		}, nil
	}
	cfg := api.DefaultConfig()
	cfg.Address = consulAddr
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := client.Status().Leader(); err != nil {
		return nil, fmt.Errorf("consul at %s: %w", consulAddr, err)
	}
	opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
	reg := discovery.NewConsul(client, opts...)
	rules := discovery.NewConsulRules(client, ruleKeys, opts...)
	var mu sync.Mutex
	var registrars []*discovery.Registrar
	return &world{
		name:     "Consul at " + consulAddr + ", rule in KV key " + ruleKeys.Service,
		registry: reg,
		rules:    rules,
		publish: func(doc string) error {
			_, err := client.KV().Put(&api.KVPair{Key: ruleKeys.Service, Value: []byte(doc)}, nil)
			return err
		},
		register: func(ctx context.Context, service, version, region string, a *net.TCPAddr) error {
			r, err := discovery.Register(ctx, client, discovery.Registration{
				Service: service, Version: version, Region: region, Address: a.IP.String(), Port: a.Port,
			}, opts...)
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
			client.KV().Delete(ruleKeys.Service, nil) //nolint:errcheck // best effort clean-up
		},
	}, nil
}

// wait returns once the registry shows n healthy instances of service.
func (w *world) wait(ctx context.Context, service string, n int) error {
	watch := w.registry.Watch(service)
	changed, stop := watch.Subscribe()
	defer stop()
	for watch.Snapshot().Len() < n {
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d instances visible: %w", service, watch.Snapshot().Len(), n, ctx.Err())
		}
	}
	return nil
}
