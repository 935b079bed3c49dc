package grpcroute_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/grpcroute"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// startVersion starts a gRPC health server whose answers carry its version
// in the "served-by" response header, and returns it with its port.
func startVersion(version string) (*grpc.Server, int) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("served-by", version))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	return srv, lis.Addr().(*net.TCPAddr).Port
}

// Routing calls by version: two versions of "greeter" in a static registry,
// and calls whose route asks for one of them.
func Example() {
	grpcroute.Register() // once, at init time, before any channel exists

	reg := discovery.NewStatic()
	for _, v := range []string{"1.0", "1.1"} {
		srv, port := startVersion(v)
		defer srv.Stop()
		reg.Set("greeter", append(reg.Instances("greeter"),
			discovery.Instance{ID: "greeter-" + v, Address: "127.0.0.1", Port: port, Version: v})...)
	}

	conn, err := grpc.NewClient("consul:///greeter",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcroute.NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(grpcroute.DefaultServiceConfig),
	)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	for _, v := range []string{"1.1", "1.0", "1.1"} {
		// The interceptors or the HTTP middleware put the route there in a
		// real chain; here it is set by hand.
		ctx := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, rule.PlainValue(v)))
		var header metadata.MD
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.WaitForReady(true)); err != nil {
			panic(err)
		}
		fmt.Println("asked for", v, "served by", header.Get("served-by"))
	}

	// A version nobody runs: the strict default fails the call.
	ctx := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, rule.PlainValue("2.0")))
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println(err)
	// Output:
	// asked for 1.1 served by [1.1]
	// asked for 1.0 served by [1.0]
	// asked for 1.1 served by [1.1]
	// rpc error: code = Unavailable desc = grpcroute: no ready instance of "greeter" for route version=2.0 (2 ready of 2 endpoints)
}

// The client interceptor writes the context's route to the outgoing
// metadata, where the next hop's server interceptor reads it. Which
// business metadata travels is the balancer's setting, shared with its
// HTTP middleware.
func ExampleInterceptors_Outbound() {
	version, _ := rule.ParseValue(`{"svc-a":"1.1","svc-b":"1.1"}`)
	route := balancer.Route{Header: http.Header{"X-User": {"u7"}}}.With(rule.TypeVersion, version)
	b, err := balancer.New(discovery.NewStatic(), balancer.WithForwardHeaders("x-user"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	ics := grpcroute.NewInterceptors(b)

	ctx := ics.Outbound(balancer.WithRoute(context.Background(), route))
	md, _ := metadata.FromOutgoingContext(ctx)
	fmt.Println(md.Get("n-d-version"), md.Get("x-user"))

	// The next hop.
	in := ics.Inbound(metadata.NewIncomingContext(context.Background(), md), "/svc.B/Call")
	got, _ := balancer.RouteFrom(in)
	c := got.Constraint("svc-b")
	fmt.Println(c[rule.TypeVersion], http.Header(got.Header).Get("X-User"))
	// Output:
	// [{"svc-a":"1.1","svc-b":"1.1"}] [u7]
	// 1.1 u7
}

// Endpoints carry their instance, read back with InstanceFrom.
func ExampleInstanceFrom() {
	snap := discovery.NewSnapshot("svc-a", 1, []discovery.Instance{
		{ID: "a1", Address: "10.0.0.1", Port: 8080, Version: "1.0", Zone: "z1"},
		{ID: "a2", Address: "10.0.0.2", Port: 8080, Version: "1.1", Zone: "z2", Weight: 20},
	})
	for _, ep := range grpcroute.StateFromSnapshot(snap).Endpoints {
		in, _ := grpcroute.InstanceFrom(ep)
		fmt.Println(ep.Addresses[0].Addr, in.ID, in.Version, in.Zone, in.EffectiveWeight())
	}
	_, ok := grpcroute.InstanceFrom(resolver.Endpoint{})
	fmt.Println(ok)
	// Output:
	// 10.0.0.1:8080 a1 1.0 z1 100
	// 10.0.0.2:8080 a2 1.1 z2 20
	// false
}

// Service configs tune the policy per channel over the builder's defaults.
func ExampleBalancerBuilder_ParseConfig() {
	bb := grpcroute.NewBalancerBuilder(grpcroute.WithFailover(balancer.Permissive))
	cfg, err := bb.ParseConfig(json.RawMessage(`{"policy":"least-in-flight","ejection":{"failures":3,"duration":"30s"}}`))
	if err != nil {
		panic(err)
	}
	c := cfg.(*grpcroute.Config)
	fmt.Println(c.Policy, c.Failover, c.Ejection.Failures, c.Ejection.Duration)

	_, err = bb.ParseConfig(json.RawMessage(`{"policy":"fastest"}`))
	fmt.Println(err)
	// Output:
	// least-in-flight permissive 3 30s
	// grpcroute: policy "fastest": want round-robin, least-in-flight or weighted-random: bad graylane balancer config
}

// breakerPolicy is the policy of ExampleWithBreaker, under a name of its
// own.
type breakerPolicy struct{ *grpcroute.BalancerBuilder }

func (breakerPolicy) Name() string { return "graylane_example_breaker" }

// Circuit breaking: version 1.1 of "greeter" fails every call with
// Unavailable. Once 4 calls have failed, its breaker opens: calls routed
// to 1.1 fail at once, without reaching it, unless the route's
// version-failover takes them to 1.0.
func ExampleWithBreaker() {
	// Once, at init time: the policy, with its breakers, under its name.
	grpcbalancer.Register(breakerPolicy{grpcroute.NewBalancerBuilder(
		grpcroute.WithBreaker(balancer.BreakerPolicy{MinRequests: 4, OpenTimeout: time.Minute}))})

	reg := discovery.NewStatic()
	srv10, port10 := startVersion("1.0")
	defer srv10.Stop()
	var calls11 atomic.Int64
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv11 := grpc.NewServer(grpc.UnaryInterceptor(func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		calls11.Add(1)
		return nil, status.Error(codes.Unavailable, "1.1 is overloaded")
	}))
	healthpb.RegisterHealthServer(srv11, health.NewServer())
	go func() { _ = srv11.Serve(lis) }()
	defer srv11.Stop()
	reg.Set("greeter",
		discovery.Instance{ID: "greeter-1.0", Address: "127.0.0.1", Port: port10, Version: "1.0"},
		discovery.Instance{ID: "greeter-1.1", Address: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port, Version: "1.1"})

	conn, err := grpc.NewClient("consul:///greeter",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcroute.NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"graylane_example_breaker":{}}]}`),
	)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	to11 := balancer.Route{}.With(rule.TypeVersion, rule.PlainValue("1.1"))
	for range 5 {
		_, err := client.Check(balancer.WithRoute(context.Background(), to11), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		fmt.Println(status.Code(err), errors.Is(err, balancer.ErrBreakerOpen))
		if errors.Is(err, balancer.ErrBreakerOpen) {
			fmt.Println(err)
		}
	}
	fmt.Println("1.1 saw", calls11.Load(), "calls")

	failover := to11.With(rule.TypeVersionFailover, rule.PlainValue("1.0"))
	var header metadata.MD
	_, err = client.Check(balancer.WithRoute(context.Background(), failover), &healthpb.HealthCheckRequest{}, grpc.Header(&header))
	fmt.Println("with version-failover 1.0:", err, "served by", header.Get("served-by"))
	// Output:
	// Unavailable false
	// Unavailable false
	// Unavailable false
	// Unavailable false
	// Unavailable true
	// rpc error: code = Unavailable desc = balancer: circuit breaker of greeter version "1.1" is open: failing fast
	// 1.1 saw 4 calls
	// with version-failover 1.0: <nil> served by [1.0]
}
