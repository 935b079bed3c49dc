package grpcroute

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
)

// observedName is the policy registered with WithMeterProvider in
// TestMain: its pickers tell the interceptors which instance they chose.
const observedName = "graylane_observed"

// observedBuilder is the policy's builder under observedName.
type observedBuilder struct{ *BalancerBuilder }

func (observedBuilder) Name() string { return observedName }

// rpcCount sums the histogram points of name whose attributes include
// want ("" as a value: absent).
func rpcCount(t *testing.T, rm *metricdata.ResourceMetrics, name string, want map[string]string) uint64 {
	t.Helper()
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				ok := true
				for k, v := range want {
					got, has := dp.Attributes.Value(attribute.Key(k))
					if v == "" {
						ok = ok && !has
					} else {
						ok = ok && has && got.String() == v
					}
				}
				if ok {
					n += dp.Count
				}
			}
		}
	}
	return n
}

// Client and server record each call under the version that served it:
// the picked instance's on the client, the server's own identity on the
// server, with the route's source; a failing 1.1 instance's calls carry
// error.type on both sides.
func TestRPCMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	reg := discovery.NewStatic()
	var list []discovery.Instance
	for _, v := range []string{"1.0", "1.1"} {
		self, err := balancer.New(reg, balancer.WithIdentity(balancer.Identity{Service: "svc-b", Version: v}))
		if err != nil {
			t.Fatal(err)
		}
		defer self.Close()
		node := &hopNode{name: "svc-b", version: v, id: "b" + v}
		if v == "1.1" {
			node.next = func(context.Context) (string, error) { return "", status.Error(codes.Unavailable, "broken") }
		}
		_, port := serveHop(t, node, NewInterceptors(self, WithMeterProvider(mp)).ServerOptions()...)
		list = append(list, discovery.Instance{ID: "b" + v, Service: "svc-b", Address: "127.0.0.1", Port: port, Version: v, Zone: "z1"})
	}
	reg.Set("svc-b", list...)
	caller, err := balancer.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	conn, err := grpc.NewClient("consul:///svc-b",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(NewResolverBuilder(reg)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+observedName+`":{}}]}`),
		grpc.WithChainUnaryInterceptor(NewInterceptors(caller, WithMeterProvider(mp)).UnaryClient()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tt := range []struct {
		version string
		calls   int
		code    codes.Code
	}{{"1.0", 3, codes.OK}, {"1.1", 2, codes.Unavailable}} {
		for range tt.calls {
			ctx, cancel := context.WithTimeout(versionRoute(t, tt.version), 5*time.Second)
			_, err := callHop(ctx, conn)
			cancel()
			if status.Code(err) != tt.code {
				t.Fatalf("call to %s: %v", tt.version, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(versionRoute(t, "2.0"), 5*time.Second)
	defer cancel()
	if _, err := callHop(ctx, conn); status.Code(err) != codes.Unavailable {
		t.Fatalf("call to 2.0: %v", err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		attrs map[string]string
		want  uint64
	}{
		{MetricClientDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "1.0", balancer.AttrZone: "z1",
			"rpc.method": "graylane.test.Hop/Call", "rpc.response.status_code": "OK", "error.type": "", "rpc.system.name": "grpc"}, 3},
		{MetricClientDuration, map[string]string{balancer.AttrVersion: "1.1", "error.type": "UNAVAILABLE"}, 2},
		{MetricClientDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "", "error.type": balancer.ErrorTypeNoInstance}, 1},
		{MetricServerDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "1.0", balancer.AttrRouteSource: "header", "error.type": ""}, 3},
		{MetricServerDuration, map[string]string{balancer.AttrService: "svc-b", balancer.AttrVersion: "1.1", "error.type": "UNAVAILABLE"}, 2},
	} {
		if got := rpcCount(t, &rm, tt.name, tt.attrs); got != tt.want {
			t.Errorf("%s %v: %d calls, want %d", tt.name, tt.attrs, got, tt.want)
		}
	}
}
