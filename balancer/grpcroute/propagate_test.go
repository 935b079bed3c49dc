package grpcroute

import (
	"context"
	"testing"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"google.golang.org/grpc/metadata"
)

// TestMiddleHopPropagates checks a gRPC hop as Nepxion's
// FeignStrategyInterceptor behaves over HTTP (Discovery 6.x.x): every
// inbound n-d-* key goes on unchanged, except the n-d-service-* identity
// keys, which carry this hop's own identity.
func TestMiddleHopPropagates(t *testing.T) {
	self := balancer.Identity{Service: "svc-b", ID: "svc-b-1", Address: "10.0.0.2:9090", Zone: "z1"}
	i := NewInterceptors(newBalancer(t, balancer.WithIdentity(self)))
	passed := map[string]string{
		"n-d-region-transfer": "dev", "n-d-region-failover": "qa", "n-d-env-failover": "common",
		"n-d-zone-failover": "z2", "n-d-address-failover": "10.0.0.9:8080", "n-d-group": "g1",
	}
	in := metadata.Pairs("n-d-version", "1.0", "n-d-service-id", "gateway", "n-d-service-version", "9")
	for k, v := range passed {
		in.Set(k, v)
	}
	ctx := i.Inbound(metadata.NewIncomingContext(context.Background(), in), "/m")
	md, _ := metadata.FromOutgoingContext(i.Outbound(ctx))
	want := map[string]string{
		"n-d-version": "1.0", pick.HeaderServiceID: "svc-b", pick.HeaderServiceAddress: "10.0.0.2:9090",
		pick.HeaderServiceZone: "z1", pick.HeaderServiceType: "service", pick.HeaderServiceVersion: "",
	}
	for k, v := range passed {
		want[k] = v
	}
	for k, v := range want {
		got := ""
		if vs := md.Get(k); len(vs) > 0 {
			got = vs[0]
		}
		if got != v {
			t.Errorf("%s: sent %q, want %q", k, got, v)
		}
	}

	// Without any route, the identity still goes out.
	md, _ = metadata.FromOutgoingContext(i.Outbound(context.Background()))
	if got := md.Get(pick.HeaderServiceID); len(got) != 1 || got[0] != "svc-b" {
		t.Errorf("no route: n-d-service-id %v", got)
	}
}

// TestTrustedEdgeHidesPassedMetadata checks that a trusted edge drops what
// clients send of the keys a hop passes on.
func TestTrustedEdgeHidesPassedMetadata(t *testing.T) {
	i := NewInterceptors(newRuleBalancer(t, chainRule, balancer.WithTrustedEdge(true)))
	in := metadata.Pairs("n-d-region-failover", "qa", "n-d-group", "g1", "xyz", "2")
	out := i.Inbound(metadata.NewIncomingContext(context.Background(), in), "/m")
	md, _ := metadata.FromOutgoingContext(i.Outbound(out))
	if len(md.Get("n-d-region-failover")) != 0 || len(md.Get("n-d-group")) != 0 {
		t.Errorf("client keys got through a trusted edge: %v", md)
	}
}

// BenchmarkMiddleHop measures the interceptors' per-call work at a middle
// hop with the n-d-* keys a Nepxion chain carries and the hop's identity.
func BenchmarkMiddleHop(b *testing.B) {
	bal, err := balancer.New(discovery.NewStatic(),
		balancer.WithIdentity(balancer.Identity{Service: "svc-b", ID: "svc-b-1", Address: "10.0.0.2:9090", Version: "1.0"}))
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	ics := NewInterceptors(bal)
	md := metadata.Pairs("n-d-version", `{"svc-b":"1.0","svc-c":"1.0"}`, "n-d-service-id", "gateway",
		"n-d-region-failover", "qa", "n-d-env-failover", "common", "n-d-group", "g1")
	in := metadata.NewIncomingContext(context.Background(), md)
	b.Run("inbound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ics.Inbound(in, "/svc.B/Call")
		}
	})
	routed := ics.Inbound(in, "/svc.B/Call")
	b.Run("outbound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ics.Outbound(routed)
		}
	})
}
