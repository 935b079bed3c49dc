package grpcroute

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/waittest"
	"github.com/graylane/graylane/rule"
)

// Two policies with breakers that open after 4 calls, half of them
// failed: one whose breakers stay open (their open timeout is an hour, so
// a test sees exactly what an open breaker does), one whose breakers let
// 2 probes through 20 ms after they open. gobreaker reads the wall clock:
// tests wait for its states by polling, never for a duration. Each test
// calls services of its own, since a builder's breakers are shared by its
// channels.
const (
	holdName  = "graylane_breaker_hold"
	probeName = "graylane_breaker_probe"
)

var holdBuilder, probeBuilder *BalancerBuilder

// namedBuilder is the policy's builder under another name.
type namedBuilder struct {
	*BalancerBuilder
	name string
}

func (b namedBuilder) Name() string { return b.name }

// registerBreakerBuilders registers holdName and probeName; TestMain calls
// it, before any channel exists.
func registerBreakerBuilders() {
	holdBuilder = NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{FailureRatio: 0.5, MinRequests: 4, OpenTimeout: time.Hour}))
	probeBuilder = NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{FailureRatio: 0.5, MinRequests: 4, OpenTimeout: 20 * time.Millisecond, HalfOpenRequests: 2}))
	grpcbalancer.Register(namedBuilder{holdBuilder, holdName})
	grpcbalancer.Register(namedBuilder{probeBuilder, probeName})
}

// breakerNode is an instance of a test service that answers with its
// version, fails with Unavailable while fail is set, and holds calls
// while hold is set, until release is closed or the caller gives up. It
// counts the calls that reach it.
type breakerNode struct {
	version string
	calls   atomic.Int64
	fail    atomic.Bool
	hold    atomic.Bool
	held    atomic.Int64
	release chan struct{}
	once    sync.Once
}

func (n *breakerNode) call(ctx context.Context) (string, error) {
	n.calls.Add(1)
	if n.fail.Load() {
		return "", status.Error(codes.Unavailable, "version "+n.version+" is down")
	}
	if n.hold.Load() {
		n.held.Add(1)
		select {
		case <-n.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return n.version, nil
}

func (n *breakerNode) letGo() { n.once.Do(func() { close(n.release) }) }

// breakerFleet serves service at each version, one instance each, and
// dials it with the policy named policy, passive ejection off.
func breakerFleet(t *testing.T, policy, service string, versions ...string) (*grpc.ClientConn, map[string]*breakerNode) {
	t.Helper()
	reg := discovery.NewStatic()
	nodes := make(map[string]*breakerNode)
	var in []discovery.Instance
	for _, v := range versions {
		n := &breakerNode{version: v, release: make(chan struct{})}
		_, port := serveHop(t, n)
		t.Cleanup(n.letGo) // before the server stops: cleanups run last first
		nodes[v] = n
		in = append(in, discovery.Instance{ID: service + "-" + v, Address: "127.0.0.1", Port: port, Version: v})
	}
	reg.Set(service, in...)
	conn, err := grpc.NewClient("consul:///"+service,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+policy+`":{"ejection":{"failures":-1}}}]}`),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, nodes
}

// breakerCall makes a unary call routed by route, within a deadline
// generous enough for a loaded machine.
func breakerCall(route balancer.Route, conn *grpc.ClientConn, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithTimeout(balancer.WithRoute(context.Background(), route), 10*time.Second)
	defer cancel()
	in, out := []byte("hop"), []byte(nil)
	err := conn.Invoke(ctx, hopCall, &in, &out, append(opts, grpc.ForceCodecV2(rawCodec{}))...)
	return string(out), err
}

func toVersion(t testing.TB, service, v string) balancer.Route {
	t.Helper()
	val, err := rule.ParseValue(`{"` + service + `":"` + v + `"}`)
	if err != nil {
		t.Fatal(err)
	}
	return balancer.Route{}.With(rule.TypeVersion, val)
}

var services atomic.Int64

// serviceName returns a name for a test's service, new on each run (the
// builders' breakers outlive a test, as -count=n runs it again).
func serviceName(prefix string) string {
	return prefix + "-" + strconv.FormatInt(services.Add(1), 10)
}

// openBreaker makes node fail and calls route until its breaker turns a
// call away, which it must do once want calls failed: with s successes
// before, max(MinRequests-s, s) reach half of the calls and MinRequests
// (4).
func openBreaker(t *testing.T, conn *grpc.ClientConn, route balancer.Route, node *breakerNode, want int64) {
	t.Helper()
	node.fail.Store(true)
	before := node.calls.Load()
	for range 20 {
		_, err := breakerCall(route, conn)
		if errors.Is(err, balancer.ErrBreakerOpen) {
			if n := node.calls.Load() - before; n != want {
				t.Errorf("%d calls reached %s before its breaker opened, want %d", n, node.version, want)
			}
			return
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call to the failing version: %v, want Unavailable", err)
		}
	}
	t.Fatal("the breaker did not open after 20 failing calls")
}

// A version failing with Unavailable opens its breaker; then its calls
// fail fast, with codes.Unavailable and an error that is a
// *balancer.BreakerOpenError, without reaching it, wait-for-ready calls
// included; strict failover sends none of them to 1.0; with the route's
// version-failover they go to 1.0 instead.
func TestBreakerOpensOverRealChannel(t *testing.T) {
	svc := serviceName("brk-open")
	conn, nodes := breakerFleet(t, holdName, svc, "1.0", "1.1")
	to11 := toVersion(t, svc, "1.1")
	for range 3 {
		if v, err := breakerCall(to11, conn); err != nil || v != "1.1" {
			t.Fatalf("healthy 1.1: %q, %v", v, err)
		}
	}
	openBreaker(t, conn, to11, nodes["1.1"], 3)

	calls11, calls10 := nodes["1.1"].calls.Load(), nodes["1.0"].calls.Load()
	for i := range 20 {
		var opts []grpc.CallOption
		if i%2 == 1 {
			opts = append(opts, grpc.WaitForReady(true))
		}
		_, err := breakerCall(to11, conn, opts...)
		var be *balancer.BreakerOpenError
		if !errors.As(err, &be) || be.Service != svc || be.Version != "1.1" || be.HalfOpen {
			t.Fatalf("call %d to 1.1 with its breaker open: %v, want a *balancer.BreakerOpenError", i, err)
		}
		if st, _ := status.FromError(err); st.Code() != codes.Unavailable ||
			st.Message() != "balancer: circuit breaker of "+svc+` version "1.1" is open: failing fast` {
			t.Fatalf("status %v", st)
		}
	}
	if n := nodes["1.1"].calls.Load() - calls11; n != 0 {
		t.Errorf("1.1 got %d calls with its breaker open, want none", n)
	}
	if n := nodes["1.0"].calls.Load() - calls10; n != 0 {
		t.Errorf("strict failover: 1.0 got %d of 1.1's calls", n)
	}

	failover := to11.With(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	for range 10 {
		if v, err := breakerCall(failover, conn); err != nil || v != "1.0" {
			t.Fatalf("1.1 open, version-failover 1.0: %q, %v; want 1.0's answer", v, err)
		}
	}
	if n := nodes["1.1"].calls.Load() - calls11; n != 0 {
		t.Errorf("1.1 got %d calls with its breaker open, want none", n)
	}
	br := holdBuilder.opts.cfg.breakers.Get(svc, "1.1")
	// Turned away: openBreaker's last call, the 20 above, and the 10 that
	// failed over.
	if br.State() != "open" || br.Opened() != 1 || br.Rejected() != 31 {
		t.Errorf("1.1's breaker: %s, opened %d times, %d calls turned away; want open, 1, 31", br.State(), br.Opened(), br.Rejected())
	}
}

// After the open timeout, probes reach the version: a failing one opens
// the breaker again, and once the version answers, probes close it.
func TestBreakerProbesCloseOverRealChannel(t *testing.T) {
	svc := serviceName("brk-probe")
	conn, nodes := breakerFleet(t, probeName, svc, "1.0")
	to10 := toVersion(t, svc, "1.0")
	node := nodes["1.0"]
	br := probeBuilder.opts.cfg.breakers.Get(svc, "1.0")
	openBreaker(t, conn, to10, node, 4)

	waittest.Until(t, "the breaker half-open", func() bool { return br.State() == "half-open" })
	before := node.calls.Load()
	if _, err := breakerCall(to10, conn); status.Code(err) != codes.Unavailable || errors.Is(err, balancer.ErrBreakerOpen) {
		t.Fatalf("probe to the failing version: %v, want its own Unavailable", err)
	}
	if n := node.calls.Load() - before; n != 1 {
		t.Fatalf("the probe reached the version %d times, want once", n)
	}
	if br.Opened() != 2 {
		t.Fatalf("a failed probe left the breaker %s, opened %d times; want it open again", br.State(), br.Opened())
	}

	node.fail.Store(false)
	waittest.Until(t, "the breaker half-open", func() bool { return br.State() == "half-open" })
	for range 2 {
		if v, err := breakerCall(to10, conn); err != nil || v != "1.0" {
			t.Fatalf("probe to the recovered version: %q, %v", v, err)
		}
	}
	if st := br.State(); st != "closed" {
		t.Fatalf("after 2 good probes the breaker is %s, want closed", st)
	}
	for range 10 {
		if _, err := breakerCall(to10, conn); err != nil {
			t.Fatalf("after the breaker closed: %v", err)
		}
	}
}

// A half-open breaker with its probes under way turns calls away as an
// open one does: they fail fast, naming the half-open state, or go to the
// route's version-failover.
func TestBreakerHalfOpenOverRealChannel(t *testing.T) {
	svc := serviceName("brk-half")
	conn, nodes := breakerFleet(t, probeName, svc, "1.0", "1.1")
	to11 := toVersion(t, svc, "1.1")
	n11 := nodes["1.1"]
	br := probeBuilder.opts.cfg.breakers.Get(svc, "1.1")
	openBreaker(t, conn, to11, n11, 4)
	n11.fail.Store(false)
	n11.hold.Store(true)
	waittest.Until(t, "the breaker half-open", func() bool { return br.State() == "half-open" })

	probes := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := breakerCall(to11, conn)
			probes <- err
		}()
	}
	waittest.Until(t, "2 probes at 1.1", func() bool { return n11.held.Load() == 2 })
	_, err := breakerCall(to11, conn)
	var be *balancer.BreakerOpenError
	if !errors.As(err, &be) || !be.HalfOpen || status.Code(err) != codes.Unavailable ||
		!strings.Contains(err.Error(), "half-open, probes under way") {
		t.Fatalf("1.1 with its probes under way: %v, want Unavailable naming the half-open breaker", err)
	}
	if v, err := breakerCall(to11.With(rule.TypeVersionFailover, rule.PlainValue("1.0")), conn); err != nil || v != "1.0" {
		t.Fatalf("1.1 with its probes under way, version-failover 1.0: %q, %v; want 1.0's answer", v, err)
	}
	n11.letGo()
	for range 2 {
		if err := <-probes; err != nil {
			t.Fatalf("probe: %v", err)
		}
	}
	if st := br.State(); st != "closed" {
		t.Errorf("after 2 good probes the breaker is %s, want closed", st)
	}
	if n := n11.calls.Load(); n != 4+2 {
		t.Errorf("1.1 saw %d calls, want 4 failures and 2 probes", n)
	}
}

// Calls that their caller cancelled or that ran out of its deadline count
// nothing against the version, however many there are.
func TestBreakerIgnoresCallerOverRealChannel(t *testing.T) {
	svc := serviceName("brk-caller")
	conn, nodes := breakerFleet(t, holdName, svc, "1.0")
	to10 := toVersion(t, svc, "1.0")
	node := nodes["1.0"]
	node.hold.Store(true)
	for i := range 6 {
		routed := balancer.WithRoute(context.Background(), to10)
		var ctx context.Context
		var cancel context.CancelFunc
		if i >= 3 {
			ctx, cancel = context.WithTimeout(routed, 20*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(routed)
			// Cancelled once the server has the call.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for node.held.Load() <= int64(i) {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
				cancel()
			}()
		}
		in, out := []byte("hop"), []byte(nil)
		err := conn.Invoke(ctx, hopCall, &in, &out, grpc.ForceCodecV2(rawCodec{}))
		if c := status.Code(err); c != codes.Canceled && c != codes.DeadlineExceeded {
			t.Fatalf("call %d: %v, want the caller's end", i, err)
		}
		cancel()
	}
	node.hold.Store(false)
	// The last Done may come just after the call returned.
	br := holdBuilder.opts.cfg.breakers.Get(svc, "1.0")
	waittest.Until(t, "6 calls counted", func() bool { n, _, _ := br.Counts(); return n >= 6 })
	if _, failures, _ := br.Counts(); br.State() != "closed" || failures != 0 {
		t.Errorf("breaker after the callers gave up: %s with %d failures", br.State(), failures)
	}
	if _, err := breakerCall(to10, conn); err != nil {
		t.Fatalf("call after the callers gave up: %v", err)
	}
}

// With WithBalancer, gRPC calls pass the balancer's breakers, under its
// policy (here its service's), and its debug view shows them; a builder
// with breaking turned off has none.
func TestBreakerWithBalancer(t *testing.T) {
	b := newBalancer(t, balancer.WithServiceBreaker("svc-a", balancer.BreakerPolicy{MinRequests: 2, OpenTimeout: time.Hour}))
	bb := NewBalancerBuilder(WithBalancer(b), WithBreaker(balancer.BreakerPolicy{Disabled: true}))
	cc, _, _ := buildBalancer(t, bb, "consul:///svc-a", parseCfg(t, bb, `{"ejection":{"failures":-1}}`), fleet("svc-a", 2, "1.0", "1.1"), true)
	ctx := versionRoute(t, "1.1")
	p := cc.current().Picker
	for range 2 {
		res, err := p.Pick(grpcbalancer.PickInfo{Ctx: ctx})
		if err != nil {
			t.Fatal(err)
		}
		res.Done(grpcbalancer.DoneInfo{Err: status.Error(codes.Unavailable, "down")})
	}
	_, err := p.Pick(grpcbalancer.PickInfo{Ctx: ctx})
	if !errors.Is(err, balancer.ErrBreakerOpen) || status.Code(err) != codes.Unavailable {
		t.Fatalf("pick after 2 failures: %v, want the balancer's breaker open", err)
	}
	var got []balancer.DebugBreaker
	for _, s := range b.Debug().Services {
		if s.Name == "svc-a" {
			got = s.Breakers
		}
	}
	if len(got) != 1 || got[0].Version != "1.1" || got[0].State != "open" || got[0].Opened != 1 || got[0].Rejected != 1 {
		t.Errorf("the balancer's debug view shows the breakers %+v, want 1.1's open, having failed 1 call fast", got)
	}

	off := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{Disabled: true}))
	if off.opts.cfg.breakers != nil {
		t.Error("a builder with breaking off has breakers")
	}
	bad := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{FailureRatio: -1}))
	if _, err := bad.ParseConfig(nil); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "failure ratio") {
		t.Errorf("config of a builder with a bad breaker policy: %v, want ErrBadConfig naming the failure ratio", err)
	}
}

// With WithBalancer, a version set has one breaker for both transports:
// HTTP requests that fail open it, and gRPC calls to that version then
// fail fast, or go to the route's version-failover.
func TestBreakerSharedByHTTPAndGRPC(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	reg := discovery.NewStatic()
	reg.Set("svc-s", discovery.Instance{ID: "s-http", Address: u.Hostname(), Port: port, Version: "1.1"})
	b, err := balancer.New(reg, balancer.WithRetry(balancer.RetryPolicy{Attempts: 1}), balancer.WithEjection(balancer.Ejection{Failures: -1}),
		balancer.WithServiceBreaker("svc-s", balancer.BreakerPolicy{MinRequests: 2, OpenTimeout: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := b.Client()
	defer client.CloseIdleConnections()
	route := toVersion(t, "svc-s", "1.1")
	for range 2 {
		req, _ := http.NewRequestWithContext(balancer.WithRoute(context.Background(), route), http.MethodGet, "http://svc-s/", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if hits.Load() != 2 {
		t.Fatalf("the HTTP instance saw %d requests, want 2", hits.Load())
	}

	bb := NewBalancerBuilder(WithBalancer(b))
	cc, _, _ := buildBalancer(t, bb, "consul:///svc-s", parseCfg(t, bb, `{"ejection":{"failures":-1}}`), fleet("svc-s", 1, "1.0", "1.1"), true)
	p := cc.current().Picker
	_, err = p.Pick(grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), route)})
	var be *balancer.BreakerOpenError
	if !errors.As(err, &be) || be.Version != "1.1" || status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC pick of 1.1 after its HTTP requests failed: %v, want the shared breaker open", err)
	}
	res, err := p.Pick(grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), route.With(rule.TypeVersionFailover, rule.PlainValue("1.0")))})
	if err != nil || versionOfAddr(res.SubConn.(*fakeSubConn).addr) != "1.0" {
		t.Fatalf("gRPC pick of 1.1 with version-failover 1.0: %v, want 1.0", err)
	}
	res.Done(grpcbalancer.DoneInfo{})
}

// breakerOutcome sorts calls' ends as the HTTP transport sorts attempts'.
func TestBreakerOutcome(t *testing.T) {
	tests := []struct {
		give error
		want circuit.Outcome
	}{
		{nil, circuit.Success},
		{status.Error(codes.Unavailable, "x"), circuit.Failure},
		{status.Error(codes.Canceled, "x"), circuit.Ignored},
		{status.Error(codes.DeadlineExceeded, "x"), circuit.Ignored},
		{status.Error(codes.NotFound, "x"), circuit.Success},
		{status.Error(codes.Internal, "x"), circuit.Success},
		{status.Error(codes.ResourceExhausted, "x"), circuit.Success},
	}
	for _, tt := range tests {
		if got := breakerOutcome(tt.give); got != tt.want {
			t.Errorf("%v: %d, want %d", tt.give, got, tt.want)
		}
	}
}

// TestBreakerFailoverWaitsForConnecting: a call whose version's breaker is
// open and whose version-failover has only a connecting instance waits for
// it (ErrNoSubConnAvailable: gRPC picks again with the next picker), rather
// than failing with the open breaker's error while the failover connects.
func TestBreakerFailoverWaitsForConnecting(t *testing.T) {
	lbc, err := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{MinRequests: 2, OpenTimeout: time.Hour})).ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *lbc.(*Config)
	br := cfg.breakers.Get("svc-b", "1.1")
	for range 2 {
		tk, err := br.Admit()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(circuit.Failure)
	}
	if br.State() != "open" {
		t.Fatalf("breaker %s, want open", br.State())
	}
	ready := []discovery.Instance{{ID: "b11", Service: "svc-b", Address: "10.0.0.2", Port: 2, Version: "1.1"}}
	connecting := []discovery.Instance{{ID: "b10", Service: "svc-b", Address: "10.0.0.1", Port: 1, Version: "1.0"}}
	hits := make([]countPicker, 1)
	p := newPicker("svc-b", ready, []grpcbalancer.Picker{&hits[0]}, connecting, 2, cfg, balancer.NewTracker(balancer.Ejection{Failures: -1}))

	to11 := toVersion(t, "svc-b", "1.1")
	_, err = p.Pick(grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), to11), FullMethodName: "/svc/M"})
	if !errors.Is(err, balancer.ErrBreakerOpen) {
		t.Errorf("without failover: %v, want the open breaker's error", err)
	}
	failover := to11.With(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	_, err = p.Pick(grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), failover), FullMethodName: "/svc/M"})
	if !errors.Is(err, grpcbalancer.ErrNoSubConnAvailable) {
		t.Errorf("failover to a connecting 1.0: %v, want ErrNoSubConnAvailable (wait)", err)
	}
	toNone := to11.With(rule.TypeVersionFailover, rule.PlainValue("2.0"))
	_, err = p.Pick(grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), toNone), FullMethodName: "/svc/M"})
	if !errors.Is(err, balancer.ErrBreakerOpen) {
		t.Errorf("failover to a version no instance runs: %v, want the open breaker's error", err)
	}
	if hits[0].n != 0 {
		t.Errorf("1.1 took %d calls through its open breaker", hits[0].n)
	}
}

// TestBreakerPickNotSent: gRPC ends a pick whose SubConn turned out not
// ready with Done(DoneInfo{}) (no error, nothing sent) and picks again. No
// call reached the version set, so its breaker counts nothing: a half-open
// breaker's probe is given back rather than counted as a success that
// would close the breaker, and a closed breaker's window does not count a
// request.
func TestBreakerPickNotSent(t *testing.T) {
	lbc, err := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{MinRequests: 2, OpenTimeout: time.Nanosecond, HalfOpenRequests: 1})).ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *lbc.(*Config)
	ready := []discovery.Instance{{ID: "b11", Service: "svc-n", Address: "10.0.0.2", Port: 2, Version: "1.1"}}
	hits := make([]countPicker, 1)
	p := newPicker("svc-n", ready, []grpcbalancer.Picker{&hits[0]}, nil, 1, cfg, balancer.NewTracker(balancer.Ejection{Failures: -1}))
	info := grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), toVersion(t, "svc-n", "1.1")), FullMethodName: "/svc/M"}
	br := cfg.breakers.Get("svc-n", "1.1")

	res, err := p.Pick(info)
	if err != nil {
		t.Fatal(err)
	}
	res.Done(grpcbalancer.DoneInfo{})
	if r, _, _ := br.Counts(); r != 0 {
		t.Errorf("closed breaker: a pick not sent counted as %d requests, want 0", r)
	}

	for range 2 {
		tk, err := br.Admit()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(circuit.Failure)
	}
	// The open timeout is over at once: the next pick is the probe.
	res, err = p.Pick(info)
	if err != nil {
		t.Fatalf("half-open breaker turned its probe away: %v", err)
	}
	res.Done(grpcbalancer.DoneInfo{})
	if br.State() != "half-open" {
		t.Fatalf("a probe not sent left the breaker %s, want half-open", br.State())
	}
	res, err = p.Pick(info)
	if err != nil {
		t.Fatalf("a probe not sent kept its place: %v", err)
	}
	res.Done(grpcbalancer.DoneInfo{BytesSent: true})
	if br.State() != "closed" {
		t.Errorf("a probe sent and answered left the breaker %s, want closed", br.State())
	}
}

// A call picked before its breaker opened that ends after the breaker
// went half-open and closed again counts nothing: its failure does not
// reopen the version that just recovered. A call picked in the new closed
// state counts.
func TestBreakerCallOfAnEarlierClosedState(t *testing.T) {
	lbc, err := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{Failures: 1, FailureRatio: 2, OpenTimeout: time.Nanosecond, HalfOpenRequests: 1})).ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *lbc.(*Config)
	ready := []discovery.Instance{{ID: "e11", Service: "svc-e", Address: "10.0.0.5", Port: 5, Version: "1.1"}}
	hits := make([]countPicker, 1)
	p := newPicker("svc-e", ready, []grpcbalancer.Picker{&hits[0]}, nil, 1, cfg, balancer.NewTracker(balancer.Ejection{Failures: -1}))
	info := grpcbalancer.PickInfo{Ctx: balancer.WithRoute(context.Background(), toVersion(t, "svc-e", "1.1")), FullMethodName: "/svc/M"}
	br := cfg.breakers.Get("svc-e", "1.1")
	failed := grpcbalancer.DoneInfo{Err: status.Error(codes.Unavailable, "down"), BytesSent: true}

	late, err := p.Pick(info)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := br.Admit()
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(circuit.Failure)
	if br.State() == "closed" {
		t.Fatal("a failure did not open the breaker")
	}
	probe, err := p.Pick(info) // the open timeout is over at once
	if err != nil {
		t.Fatalf("half-open breaker turned its probe away: %v", err)
	}
	probe.Done(grpcbalancer.DoneInfo{BytesSent: true})
	if br.State() != "closed" {
		t.Fatalf("after a good probe: %s", br.State())
	}
	late.Done(failed)
	if br.State() != "closed" || br.Opened() != 1 {
		t.Fatalf("a call of the earlier closed state moved the breaker to %s (opened %d times)", br.State(), br.Opened())
	}
	res, err := p.Pick(info)
	if err != nil {
		t.Fatal(err)
	}
	res.Done(failed)
	if br.Opened() != 2 {
		t.Fatalf("a failed call of the current closed state left the breaker %s", br.State())
	}
}

// TestPickNotSentKeepsInstanceFailures: a pick gRPC ends unsent (its
// SubConn not ready) says nothing about the instance either: it neither
// resets the failures in a row that passive ejection counts (nor the
// ejection backoff) as a success would, and it ends the call in flight.
func TestPickNotSentKeepsInstanceFailures(t *testing.T) {
	lbc, err := NewBalancerBuilder(WithEjection(balancer.Ejection{Failures: 5})).ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *lbc.(*Config)
	ready := []discovery.Instance{{ID: "c10", Service: "svc-c", Address: "10.0.0.3", Port: 3, Version: "1.0"}}
	hits := make([]countPicker, 1)
	tracker := balancer.NewTracker(balancer.Ejection{Failures: 5})
	p := newPicker("svc-c", ready, []grpcbalancer.Picker{&hits[0]}, nil, 1, cfg, tracker)
	info := grpcbalancer.PickInfo{Ctx: context.Background(), FullMethodName: "/svc/M"}

	res, err := p.Pick(info)
	if err != nil {
		t.Fatal(err)
	}
	res.Done(grpcbalancer.DoneInfo{Err: status.Error(codes.Unavailable, "x"), BytesSent: true})
	st := tracker.State("c10")
	if st.Failures() != 1 {
		t.Fatalf("after a failed call: %d failures in a row, want 1", st.Failures())
	}
	res, err = p.Pick(info)
	if err != nil {
		t.Fatal(err)
	}
	res.Done(grpcbalancer.DoneInfo{})
	if st.Failures() != 1 || st.InFlight() != 0 {
		t.Errorf("after a pick not sent: %d failures in a row, %d in flight; want 1 and 0", st.Failures(), st.InFlight())
	}
}
