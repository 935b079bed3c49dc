package grpcroute_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer/grpcroute"
	"github.com/graylane/graylane/discovery"
)

// tracedPolicy is the policy of ExampleInterceptors_StatsHandler, whose
// pickers tell the interceptors the instance they pick.
type tracedPolicy struct{ *grpcroute.BalancerBuilder }

func (tracedPolicy) Name() string { return "graylane_example_traced" }

// Attempts in a trace: the first call to "greeter" is refused with
// Unavailable, and the service config's retry policy tries again. The
// call is one client span; the stats handler that DialOptions installs
// adds a span per attempt under it, with the instance and the outcome.
func ExampleInterceptors_StatsHandler() {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	// Once, at init time: the policy, told to report its picks.
	grpcbalancer.Register(tracedPolicy{grpcroute.NewBalancerBuilder(grpcroute.WithTracerProvider(tp))})

	var calls atomic.Int64
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if calls.Add(1) == 1 {
			return nil, status.Error(codes.Unavailable, "warming up")
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	reg := discovery.NewStatic()
	reg.Set("greeter", discovery.Instance{ID: "greeter-1", Address: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port, Version: "1.0"})

	ics := grpcroute.NewInterceptors(nil, grpcroute.WithTracerProvider(tp))
	conn, err := grpc.NewClient("consul:///greeter", append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcroute.NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"graylane_example_traced":{}}],
			"methodConfig":[{"name":[{"service":"grpc.health.v1.Health"}],
				"retryPolicy":{"maxAttempts":2,"initialBackoff":"0.01s","maxBackoff":"0.01s","backoffMultiplier":1,
					"retryableStatusCodes":["UNAVAILABLE"]}}]}`),
	}, ics.DialOptions()...)...)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println("call:", err)
	for _, s := range sr.Ended() {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		fmt.Println(s.Name(), attrs["graylane.instance"], attrs["rpc.response.status_code"])
	}
	// Output:
	// call: <nil>
	// Attempt.grpc.health.v1.Health.Check greeter-1 UNAVAILABLE
	// Attempt.grpc.health.v1.Health.Check greeter-1 OK
	// grpc.health.v1.Health/Check greeter-1 OK
}
