package grpcroute

import (
	"context"
	"runtime"
	"testing"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// BenchmarkPick measures one pick (and its Done callback, as gRPC calls it)
// over 3 versions x 100 ready sub-connections, next to grpc-go's own
// round_robin over the same 300 sub-connections, both built through their
// real balancers on the same fake channel.
func BenchmarkPick(b *testing.B) {
	instances := fleet("svc-a", 100, "1.0", "1.1", "1.2")
	chain, err := rule.ParseValue(`{"svc-a":"1.1","svc-b":"1.1","svc-c":"1.1"}`)
	if err != nil {
		b.Fatal(err)
	}
	routed := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, chain))
	weighted := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersionWeight, rule.PlainValue("1.0=90;1.1=10")))

	ours, _, _ := buildBalancer(b, NewBalancerBuilder(), "consul:///svc-a", nil, instances, true)
	rr, _, _ := buildBalancer(b, grpcbalancer.Get(roundrobin.Name), "consul:///svc-a", nil, instances, true)

	bench := func(cc *fakeCC, ctx context.Context) func(*testing.B) {
		return func(b *testing.B) {
			p := cc.current().Picker
			info := grpcbalancer.PickInfo{Ctx: ctx, FullMethodName: "/svc.A/Call"}
			runtime.GC()
			b.ReportAllocs()
			for b.Loop() {
				res, err := p.Pick(info)
				if err != nil {
					b.Fatal(err)
				}
				if res.Done != nil {
					res.Done(grpcbalancer.DoneInfo{})
				}
			}
		}
	}
	parallel := func(cc *fakeCC, ctx context.Context) func(*testing.B) {
		return func(b *testing.B) {
			p := cc.current().Picker
			info := grpcbalancer.PickInfo{Ctx: ctx, FullMethodName: "/svc.A/Call"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := p.Pick(info)
					if err != nil {
						b.Error(err)
						return
					}
					if res.Done != nil {
						res.Done(grpcbalancer.DoneInfo{})
					}
				}
			})
		}
	}
	// A gRPC call's context is deeper than a bare WithRoute: the
	// interceptors' outgoing metadata, deadlines and call values sit on top
	// of the route, and the route lookup walks past them.
	deep := routed
	for i := range 8 {
		deep = context.WithValue(deep, benchKey(i), i)
	}
	deep = metadata.NewOutgoingContext(deep, metadata.Pairs("n-d-version", chain.String()))

	// The HTTP balancer's Pick over the same instances (3 versions x 100),
	// and over 3x10 and 3x10,000 to show that a pick does not grow with
	// the fleet. Unrouted: no route in the context and no rule.
	httpPick := func(n int, ctx context.Context) func(*testing.B) {
		reg := discovery.NewStatic()
		reg.Set("svc-a", fleet("svc-a", n, "1.0", "1.1", "1.2")...)
		bal, err := balancer.New(reg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = bal.Close() })
		if _, done, err := bal.Pick(ctx, "svc-a"); err != nil { // warm: discovery answered, set cached
			b.Fatal(err)
		} else {
			done(nil)
		}
		return func(b *testing.B) {
			runtime.GC() // the 3x10,000 fleet's setup garbage, not the pick's
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := bal.Pick(ctx, "svc-a")
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		}
	}
	b.Run("http/version-route", httpPick(100, routed))
	b.Run("http/no-route", httpPick(100, context.Background()))
	b.Run("http/version-route-3x10", httpPick(10, routed))
	b.Run("http/version-route-3x10000", httpPick(10_000, routed))
	b.Run("graylane/version-route", bench(ours, routed))
	b.Run("graylane/version-route-deep-context", bench(ours, deep))
	b.Run("graylane/version-weight", bench(ours, weighted))
	b.Run("graylane/no-route", bench(ours, context.Background()))
	b.Run("round_robin", bench(rr, context.Background()))
	b.Run("parallel/graylane/version-route", parallel(ours, routed))
	b.Run("parallel/round_robin", parallel(rr, context.Background()))
}

type benchKey int

// BenchmarkInterceptors measures the per-call work of the interceptors at a
// middle hop: reading the inbound route and writing it out again.
func BenchmarkInterceptors(b *testing.B) {
	bal, err := balancer.New(discovery.NewStatic(), balancer.WithForwardHeaders("x-user"))
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	ics := NewInterceptors(bal)
	md := metadata.Pairs("n-d-version", `{"svc-a":"1.1","svc-b":"1.1"}`, "x-user", "u7", "other", "x")
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
