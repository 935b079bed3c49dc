// Command grpc shows graylane's gRPC plugin, package balancer/grpcroute:
// a call chain that keeps its blue/green or gray route across HTTP and gRPC
// hops.
//
//	go run ./examples/grpc
//
// The chain, on the embedded registry:
//
//	HTTP client -> gateway (HTTP, decides) -> svc-a (gRPC, 1.0 and 1.1) -> svc-b (gRPC, 1.0 and 1.1)
//
// The gateway holds the rule (an orchestration spec: x-channel: beta goes to
// the new versions, x-channel: stable to the old ones, everything else 90/10)
// and decides once per request in its HTTP middleware. Its gRPC client
// interceptor writes the decision into the call's metadata as n-d-version;
// svc-a's server interceptor puts it into the handler's context, and svc-a's
// own client interceptor and picker carry it on to svc-b. A gRPC client can
// also enter the chain at svc-a and route itself with n-d-* metadata (svc-a
// is not an edge), which also shows a route that differs by service.
//
// Every gRPC hop is wired the same way:
//
//	grpcroute.Register() // once, at the start of main
//	b, _ := balancer.New(registry, balancer.WithForwardHeaders("x-user-id"))
//	ics := grpcroute.NewInterceptors(b)
//	conn, _ := grpc.NewClient("consul:///svc-b", append(ics.DialOptions(),
//	    grpc.WithTransportCredentials(insecure.NewCredentials()),
//	    grpc.WithResolvers(grpcroute.NewResolverBuilder(registry)),
//	    grpc.WithDefaultServiceConfig(grpcroute.DefaultServiceConfig))...)
//	srv := grpc.NewServer(ics.ServerOptions()...)
//
// The program prints the chains that served each kind of call and checks
// them: it exits 1 if a chain mixes versions against its route, the user id
// did not reach the last hop, or the gray split is off the rule's weights.
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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/grpcroute"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/rule"
)

// spec is the gateway's rule, expanded against the live versions of svc-a
// and svc-b (1.0 old, 1.1 new).
const spec = `service: [svc-a, svc-b]
blueGreen:
  - expression: "#H['x-channel'] == 'beta'"
    route: blue    # new: 1.1
  - expression: "#H['x-channel'] == 'stable'"
    route: green   # old: 1.0
gray:
  - weight: [90, 10]
`

// userKey is the business header (HTTP) and metadata key (gRPC) that
// travels down the chain with the route.
const userKey = "x-user-id"

func main() {
	grpcroute.Register() // before any channel exists
	n := flag.Int("n", 1000, "calls in the gray case")
	demo.Main("grpc", 30*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, *n, log)
	})
}

// run expects grpcroute.Register to have been called.
func run(ctx context.Context, out io.Writer, n int, log *zap.Logger) error {
	reg := discovery.NewStatic()
	defer reg.Close()
	var fleet demo.Fleet
	defer fleet.Close()

	// svc-b and svc-a, two versions each. Their balancer has no rule: these
	// hops follow the route they receive and decide nothing themselves; it
	// names the user id as a business header to forward, for gRPC metadata
	// as for HTTP headers.
	hops, err := balancer.New(reg, balancer.WithForwardHeaders(userKey), balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer hops.Close()
	for _, s := range []struct{ service, next string }{{"svc-b", ""}, {"svc-a", "svc-b"}} {
		for _, version := range []string{"1.0", "1.1"} {
			ics := grpcroute.NewInterceptors(hops, grpcroute.WithLogger(log))
			h := &hop{name: s.service + "@" + version}
			if s.next != "" {
				conn, err := dial(reg, ics, s.next)
				if err != nil {
					return err
				}
				fleet.Defer(func() { conn.Close() })
				h.next = &chainClient{conn}
			}
			srv := grpc.NewServer(append(ics.ServerOptions(), grpc.ForceServerCodecV2(jsonCodec{}))...)
			srv.RegisterService(&chainDesc, h)
			ln, err := fleet.Listen()
			if err != nil {
				return err
			}
			fleet.Defer(srv.Stop)
			go srv.Serve(ln) //nolint:errcheck // ends with Stop
			addr := ln.Addr().(*net.TCPAddr)
			if err := reg.Add(discovery.Instance{Service: s.service, Version: version, Address: addr.IP.String(), Port: addr.Port}); err != nil {
				return err
			}
		}
	}

	// The gateway: HTTP in, gRPC out, one balancer for both. The middleware
	// decides the route; the client interceptor sends it on as metadata.
	rules := discovery.NewStaticRules([]byte(spec))
	defer rules.Close()
	b, err := balancer.New(reg, balancer.WithTrustedEdge(true), balancer.WithRuleSource(rules),
		balancer.WithForwardHeaders(userKey), balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := demo.WaitRule(ctx, b, nil); err != nil {
		return err
	}
	gwConn, err := dial(reg, grpcroute.NewInterceptors(b, grpcroute.WithLogger(log)), "svc-a")
	if err != nil {
		return err
	}
	defer gwConn.Close()
	svcA := chainClient{gwConn}
	gateway := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply, err := svcA.Call(r.Context(), &CallRequest{Order: r.URL.Query().Get("order")})
		if err != nil {
			http.Error(w, "gateway: "+err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s|%s", reply.Chain, reply.User)
	}))
	gatewayAddr, err := fleet.Serve(gateway)
	if err != nil {
		return err
	}
	gatewayURL := "http://" + gatewayAddr.String() + "/?order=42"

	// A plain gRPC client entering the chain at svc-a. Interceptors without
	// a balancer only carry what the caller puts in the metadata.
	direct, err := dial(reg, grpcroute.NewInterceptors(nil), "svc-a")
	if err != nil {
		return err
	}
	defer direct.Close()
	directA := chainClient{direct}

	fmt.Fprintln(out, "graylane grpc on the embedded registry")
	fmt.Fprintln(out, "chain: client -> gateway (HTTP) -> svc-a (gRPC, 1.0, 1.1) -> svc-b (gRPC, 1.0, 1.1)")
	fmt.Fprintln(out, "rule at the gateway: x-channel=beta -> 1.1, x-channel=stable -> 1.0, others 90/10")
	fmt.Fprintln(out)

	httpc := &http.Client{Timeout: 10 * time.Second}
	defer httpc.CloseIdleConnections()
	viaGateway := func(channel string) func(ctx context.Context, user string) (string, string, error) {
		return func(ctx context.Context, user string) (string, string, error) {
			body, err := demo.Get(ctx, httpc, gatewayURL, map[string]string{"x-channel": channel, userKey: user})
			chain, gotUser, _ := strings.Cut(body, "|")
			return chain, gotUser, err
		}
	}
	viaGRPC := func(route string) func(ctx context.Context, user string) (string, string, error) {
		return func(ctx context.Context, user string) (string, string, error) {
			ctx = metadata.AppendToOutgoingContext(ctx, rule.TypeVersion.HeaderName(), route, userKey, user)
			reply, err := directA.Call(ctx, &CallRequest{Order: "42"})
			if err != nil {
				return "", "", err
			}
			return reply.Chain, reply.User, nil
		}
	}
	const newer = "svc-a@1.1 > svc-b@1.1"
	cases := []demoCase{
		{name: "x-channel: beta", entry: "HTTP gateway", n: n / 10, call: viaGateway("beta"), want: 100},
		{name: "x-channel: stable", entry: "HTTP gateway", n: n / 10, call: viaGateway("stable"), want: 0},
		{name: "no header", entry: "HTTP gateway", n: n, call: viaGateway(""), want: 10},
		{name: `n-d-version: {"svc-a":"1.1","svc-b":"1.0"}`, entry: "gRPC at svc-a", n: n / 10,
			call: viaGRPC(`{"svc-a":"1.1","svc-b":"1.0"}`), only: "svc-a@1.1 > svc-b@1.0"},
	}
	failed := false
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tenters at\tcalls\tchains seen\tuser id at svc-b\ton 1.1\twant\tcheck")
	for _, c := range cases {
		chains, problems := c.send(ctx)
		newShare := 100 * float64(chains[newer]) / float64(c.n)
		for chain := range chains {
			if c.only != "" && chain != c.only {
				problems = append(problems, "chain "+chain+" off the route")
			}
			if c.only == "" && chain != newer && chain != "svc-a@1.0 > svc-b@1.0" {
				problems = append(problems, "mixed chain "+chain)
			}
		}
		seen := strings.ReplaceAll(demo.Chains(chains), "svc-", "")
		want := "only " + strings.ReplaceAll(c.only, "svc-", "")
		if c.only == "" {
			want = fmt.Sprintf("%.0f%%", c.want)
			if math.Abs(newShare-c.want) > demo.Tolerance(c.want, c.n) {
				problems = append(problems, fmt.Sprintf("%.1f%% on 1.1, want %.0f%%", newShare, c.want))
			}
		}
		verdict := "ok"
		if len(problems) > 0 {
			failed = true
			verdict = "FAIL: " + strings.Join(first(problems, 3), "; ")
		}
		userCheck := "arrived"
		for _, p := range problems {
			if strings.Contains(p, "user") {
				userCheck = "lost"
			}
		}
		share := fmt.Sprintf("%.1f%%", newShare)
		if c.only != "" {
			share = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.name, c.entry, c.n, seen, userCheck, share, want, verdict)
	}
	tw.Flush()

	// A route to a version nobody runs fails with codes.Unavailable and
	// says why; it never lands on another version.
	_, _, err = viaGRPC(`{"svc-b":"2.0"}`)(ctx, "u-x")
	fmt.Fprintln(out)
	fmt.Fprintf(out, "n-d-version {\"svc-b\":\"2.0\"} (no such version), gRPC at svc-a:\n  %v\n", err)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `"svc-b"`) {
		failed = true
		fmt.Fprintln(out, "  FAIL: want codes.Unavailable naming svc-b")
	}
	if failed {
		return errors.New("some calls did not follow their route (see the table)")
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Every chain kept its route across HTTP and gRPC hops; the user id reached the last hop.")
	return nil
}

// dial opens a channel to service through graylane's resolver, policy and
// client interceptors.
func dial(reg discovery.Registry, ics *grpcroute.Interceptors, service string) (*grpc.ClientConn, error) {
	return grpc.NewClient("consul:///"+service, append(ics.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcroute.NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(grpcroute.DefaultServiceConfig),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(jsonCodec{})),
	)...)
}

// hop is one instance of svc-a or svc-b. Its handler's context carries the
// route that svc-a's server interceptor read from the metadata, so the call
// to the next service needs nothing more than that context.
type hop struct {
	name string
	next *chainClient // nil for the last hop
}

func (h *hop) Call(ctx context.Context, in *CallRequest) (*CallReply, error) {
	if h.next == nil {
		md, _ := metadata.FromIncomingContext(ctx)
		return &CallReply{Chain: h.name, User: strings.Join(md.Get(userKey), ",")}, nil
	}
	reply, err := h.next.Call(ctx, in)
	if err != nil {
		return nil, err // a status error, passed on as is
	}
	reply.Chain = h.name + " > " + reply.Chain
	return reply, nil
}

// demoCase is one kind of call.
type demoCase struct {
	name, entry string
	n           int
	call        func(ctx context.Context, user string) (chain, gotUser string, err error)
	want        float64 // share of chains on 1.1, in percent, or
	only        string  // the one chain allowed
}

// send makes c.n calls from 8 goroutines, each with its own user id, and
// counts the chains. It reports errors and lost user ids as problems.
func (c *demoCase) send(ctx context.Context) (map[string]int, []string) {
	tally := demo.Send(c.n, func(i int) (string, error) {
		user := "u-" + strconv.Itoa(i)
		chain, got, err := c.call(ctx, user)
		if err == nil && got != user {
			err = fmt.Errorf("svc-b saw user %q, want %q", got, user)
		}
		return chain, err
	})
	return tally.Counts(), tally.Errors()
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
