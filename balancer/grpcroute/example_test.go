package grpcroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"

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
