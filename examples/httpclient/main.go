// Command httpclient shows an existing net/http service adopting graylane
// with two changes, and what it gains: blue/green routing that follows the
// call chain, and business headers that travel with it.
//
//	go run ./examples/httpclient                          # embedded in-memory registry
//	go run ./examples/httpclient -consul 127.0.0.1:8500   # a real Consul agent (or CONSUL_HTTP_ADDR)
//
// order-service is the existing service. It has a mux and an http.Client,
// and calls two other services, each running 1.0 and 1.1:
//
//	client -> order-service -> inventory (1.0, 1.1)
//	                        -> pricing   (1.0, 1.1)
//
// Adopting graylane changes three lines in order-service:
//
//	b, _ := balancer.New(registry, balancer.WithForwardHeaders("X-User-Id"))
//	srv := &http.Server{Handler: b.Middleware(mux)} // was: Handler: mux
//	client := b.Client()                            // was: http.DefaultClient
//
// and outbound URLs name the service ("http://inventory/stock/7") instead
// of an address. Handlers must make their outbound calls with the inbound
// request's context (http.NewRequestWithContext(r.Context(), ...)): that is
// where the middleware puts the route.
//
// The program then sends requests with and without an n-d-version header
// and prints which version served each downstream call, the route and user
// each downstream instance saw, and checks it: it exits 1 if any call went
// to a version the route excludes or lost its headers.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
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

// userHeader is the business header order-service forwards down the chain.
const userHeader = "X-User-Id"

func main() {
	consulAddr := flag.String("consul", os.Getenv("CONSUL_HTTP_ADDR"), demo.ConsulUsage)
	demo.Main("httpclient", 30*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, *consulAddr, log)
	})
}

// served is what a downstream instance reports about a call it served.
type served struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Route   string `json:"route"` // the n-d-version header it received
	User    string `json:"user"`  // the X-User-Id header it received
}

// order is order-service's answer.
type order struct {
	ID        string `json:"id"`
	Inventory served `json:"inventory"`
	Pricing   served `json:"pricing"`
	// Partner reports whether the call to a fixed partner address carried
	// any n-d-* header (it must not: routes stay inside the fleet).
	PartnerSawRoute bool `json:"partnerSawRoute"`
}

func run(ctx context.Context, out io.Writer, consulAddr string, log *zap.Logger) error {
	// On Consul, the registry watches the agent's health API and each
	// instance registers itself with its version.
	w, err := demo.Open(consulAddr, func(client *api.Client) demo.Consul {
		opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
		return demo.Consul{
			Registry: discovery.NewConsul(client, opts...),
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

	// The downstream services: leaves that report who served and what
	// arrived. (In a real fleet they would use graylane too, to pass the
	// route on to their own calls.)
	for _, service := range []string{"inventory", "pricing"} {
		for _, version := range []string{"1.0", "1.1"} {
			addr, err := fleet.Serve(leaf(service, version))
			if err != nil {
				return err
			}
			if err := w.Register(ctx, discovery.Registration{
				Service: service, Version: version, Address: addr.IP.String(), Port: addr.Port,
			}); err != nil {
				return err
			}
		}
		if err := w.Wait(ctx, service, 2); err != nil {
			return err
		}
	}
	// A partner API outside the fleet, called at a fixed address.
	partner, err := fleet.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		saw := false
		for name := range r.Header {
			saw = saw || strings.HasPrefix(strings.ToLower(name), balancer.HeaderPrefix)
		}
		fmt.Fprint(w, saw)
	}))
	if err != nil {
		return err
	}

	// order-service, the existing service, after adopting graylane.
	b, err := balancer.New(w.Registry, balancer.WithForwardHeaders(userHeader), balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	client := b.Client()
	defer client.CloseIdleConnections()
	orderAddr, err := fleet.Serve(b.Middleware(orderService(client, "http://"+partner.String()+"/")))
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "graylane httpclient on the %s\n", w.Name)
	fmt.Fprintln(out, "chain: client -> order-service -> inventory (1.0, 1.1), pricing (1.0, 1.1)")
	fmt.Fprintln(out)

	cases := []struct {
		name, route, user string
		want              map[string]string // service -> the only version allowed; missing: both must serve
		wantStatus        int
	}{
		{name: "no route", user: "ann", want: map[string]string{}},
		{name: "inventory on 1.1", route: `{"inventory":"1.1"}`, user: "bob", want: map[string]string{"inventory": "1.1"}},
		{name: "all on 1.0", route: "1.0", user: "cai", want: map[string]string{"inventory": "1.0", "pricing": "1.0"}},
		{name: "all on 1.1", route: `{"inventory":"1.1","pricing":"1.1"}`, user: "dee", want: map[string]string{"inventory": "1.1", "pricing": "1.1"}},
		{name: "no such version", route: `{"inventory":"2.0"}`, user: "eve", wantStatus: http.StatusServiceUnavailable},
	}
	const n = 20
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tn-d-version sent\tinventory served by\tpricing served by\tdownstream saw\tcheck")
	httpc := &http.Client{Timeout: 10 * time.Second}
	defer httpc.CloseIdleConnections()
	failed, leaked := false, false
	var failure string
	for _, c := range cases {
		seen := map[string]map[string]int{"inventory": {}, "pricing": {}}
		var problems []string
		saw := ""
		for i := range n {
			o, status, body, err := get(ctx, httpc, fmt.Sprintf("http://%s/orders/%d", orderAddr, i), c.route, c.user)
			if err != nil {
				return err
			}
			if c.wantStatus != 0 {
				if status != c.wantStatus {
					problems = append(problems, fmt.Sprintf("status %d, want %d", status, c.wantStatus))
				}
				failure = body
				saw = fmt.Sprintf("nothing: order-service answered %d", status)
				continue
			}
			if status != http.StatusOK {
				problems = append(problems, fmt.Sprintf("status %d: %s", status, body))
				continue
			}
			for _, s := range []served{o.Inventory, o.Pricing} {
				seen[s.Service][s.Version]++
				if s.User != c.user {
					problems = append(problems, fmt.Sprintf("%s saw user %q", s.Service, s.User))
				}
				if s.Route != c.route {
					problems = append(problems, fmt.Sprintf("%s saw route %q", s.Service, s.Route))
				}
			}
			if o.PartnerSawRoute {
				leaked = true
				problems = append(problems, "the partner API received n-d-* headers")
			}
			saw = fmt.Sprintf("user %s, route %s", o.Inventory.User, orNone(o.Inventory.Route))
		}
		if c.wantStatus == 0 {
			for service, versions := range seen {
				want, pinned := c.want[service]
				switch {
				case pinned && (len(versions) != 1 || versions[want] != n):
					problems = append(problems, fmt.Sprintf("%s: want only %s", service, want))
				case !pinned && (versions["1.0"] == 0 || versions["1.1"] == 0):
					problems = append(problems, service+": want both versions (no constraint)")
				}
			}
		}
		verdict := "ok"
		if len(problems) > 0 {
			failed = true
			verdict = "FAIL: " + strings.Join(dedupe(problems), "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.name, orNone(c.route), demo.Counts(seen["inventory"]), demo.Counts(seen["pricing"]), saw, verdict)
	}
	tw.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(out, "A route to a version nobody runs fails, never lands elsewhere:\n  %s\n", strings.TrimSpace(failure))
	if !leaked {
		fmt.Fprintf(out, "Calls to the partner API at %s went through the same client, untouched: no n-d-* headers.\n", partner)
	}
	if failed {
		return errors.New("some calls did not follow their route (see the table)")
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Every call followed the route it arrived with; the user header travelled with it.")
	return nil
}

// orderService is the existing service's mux. Its only graylane-specific
// trait: outbound calls use the inbound request's context and name services
// in their URLs.
func orderService(client *http.Client, partnerURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		o := order{ID: id}
		for _, call := range []struct {
			url  string
			into *served
		}{
			{"http://inventory/stock/" + id, &o.Inventory},
			{"http://pricing/price/" + id, &o.Pricing},
		} {
			body, err := demo.Get(r.Context(), client, call.url, nil)
			if err == nil {
				err = json.Unmarshal([]byte(body), call.into)
			}
			if err != nil {
				status := http.StatusBadGateway
				if errors.Is(err, balancer.ErrNoInstance) {
					status = http.StatusServiceUnavailable
				}
				http.Error(w, "order-service: "+err.Error(), status)
				return
			}
		}
		body, err := demo.Get(r.Context(), client, partnerURL, nil)
		if err != nil {
			http.Error(w, "order-service: partner: "+err.Error(), http.StatusBadGateway)
			return
		}
		o.PartnerSawRoute = body == "true"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(o) //nolint:errcheck // the client went away
	})
	return mux
}

// leaf is a downstream service instance: it reports who it is and the route
// and user headers it received.
func leaf(service, version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(served{ //nolint:errcheck // the client went away
			Service: service, Version: version,
			Route: r.Header.Get(rule.TypeVersion.HeaderName()), User: r.Header.Get(userHeader),
		})
	})
}

// get calls order-service as an outside client would.
func get(ctx context.Context, c *http.Client, url, route, user string) (o order, status int, body string, err error) {
	status, b, err := demo.Do(ctx, c, http.MethodGet, url, map[string]string{rule.TypeVersion.HeaderName(): route, userHeader: user})
	if err != nil {
		return o, 0, "", err
	}
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &o); err != nil {
			return o, 0, "", fmt.Errorf("order-service answer: %w", err)
		}
	}
	return o, status, string(b), nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, p := range s {
		if i == 0 || p != s[i-1] {
			out = append(out, p)
		}
	}
	return out
}
