package grpcroute

import (
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/goleak"
	grpcbalancer "google.golang.org/grpc/balancer"
)

func TestMain(m *testing.M) {
	// Registration is init-time only: here, before any channel exists.
	Register()
	// The same policy whose pickers report to the interceptors' metrics
	// (metrics_test.go).
	grpcbalancer.Register(observedBuilder{NewBalancerBuilder(WithMeterProvider(noop.NewMeterProvider()))})
	// The policy with breakers that open quickly, and stay open or not
	// (breaker_test.go).
	registerBreakerBuilders()
	goleak.VerifyTestMain(m,
		// The HTTP client's idle keep-alive connections (to the Consul agent
		// and the HTTP hops of mixed chains) outlive a test briefly; they
		// belong to net/http's transport, not to this package.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}
