package grpcroute

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
	// Circuit breaking is on by default: the picks above pass closed
	// breakers. The same without them, and with 1.1's breaker open and
	// the route's version-failover taking its calls to 1.0.
	noBreaker, _, _ := buildBalancer(b, NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{Disabled: true})), "consul:///svc-a", nil, instances, true)
	openBuilder := NewBalancerBuilder(WithBreaker(balancer.BreakerPolicy{MinRequests: 1, OpenTimeout: time.Hour}))
	open, _, _ := buildBalancer(b, openBuilder, "consul:///svc-a", nil, instances, true)
	if res, err := open.current().Picker.Pick(grpcbalancer.PickInfo{Ctx: routed}); err != nil {
		b.Fatal(err)
	} else {
		res.Done(grpcbalancer.DoneInfo{Err: status.Error(codes.Unavailable, "down")})
	}
	failover := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, chain).With(rule.TypeVersionFailover, rule.PlainValue("1.0")))
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
	newHTTP := func(n int, ctxs ...context.Context) *balancer.Balancer {
		reg := discovery.NewStatic()
		reg.Set("svc-a", fleet("svc-a", n, "1.0", "1.1", "1.2")...)
		bal, err := balancer.New(reg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = bal.Close() })
		for _, ctx := range ctxs {
			if _, done, err := bal.Pick(ctx, "svc-a"); err != nil { // warm: discovery answered, set cached
				b.Fatal(err)
			} else {
				done(nil)
			}
		}
		return bal
	}
	httpPick := func(n int, ctx context.Context) func(*testing.B) {
		bal := newHTTP(n, ctx)
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
	b.Run("graylane/version-route-breaker-off", bench(noBreaker, routed))
	b.Run("graylane/version-route-breaker-open-failover", bench(open, failover))
	b.Run("graylane/version-route-deep-context", bench(ours, deep))
	b.Run("graylane/version-weight", bench(ours, weighted))
	b.Run("graylane/no-route", bench(ours, context.Background()))
	b.Run("round_robin", bench(rr, context.Background()))
	b.Run("parallel/graylane/version-route", parallel(ours, routed))
	b.Run("parallel/graylane/version-route-breaker-off", parallel(noBreaker, routed))
	b.Run("parallel/round_robin", parallel(rr, context.Background()))
	b.Run("ratio", ratio(rr.current().Picker, ours.current().Picker, noBreaker.current().Picker, newHTTP(100, routed, context.Background()), routed))
}

// ratio times the targets' picks side by side in one loop: chunks of
// ratioChunk picks of each kind in turn (round_robin, the gRPC picker
// routed with its breakers closed and without breakers, the HTTP Pick
// routed and unrouted), one chunk per iteration, and
// reports each kind's median chunk per pick and its multiple of
// round_robin's. On a busy
// machine a chunk that was descheduled is an outlier the median leaves
// out, and all kinds see the same load, so the multiples hold where the
// separate sub-benchmarks' times spread; the clock's own cost is measured
// and taken off each chunk. Its B/op is the record of chunk times; the
// picks themselves do not allocate (see the sub-benchmarks above).
func ratio(rr, ours, noBreaker grpcbalancer.Picker, bal *balancer.Balancer, routed context.Context) func(*testing.B) {
	grpcPick := func(p grpcbalancer.Picker, ctx context.Context) func(*testing.B) {
		info := grpcbalancer.PickInfo{Ctx: ctx, FullMethodName: "/svc.A/Call"}
		return func(b *testing.B) {
			for range ratioChunk {
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
	httpPick := func(ctx context.Context) func(*testing.B) {
		return func(b *testing.B) {
			for range ratioChunk {
				_, done, err := bal.Pick(ctx, "svc-a")
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		}
	}
	kinds := []struct {
		name string
		run  func(*testing.B)
	}{
		{"round_robin", grpcPick(rr, context.Background())},
		{"grpc-routed", grpcPick(ours, routed)},
		{"grpc-routed-breaker-off", grpcPick(noBreaker, routed)},
		{"http-routed", httpPick(routed)},
		{"http-unrouted", httpPick(context.Background())},
	}
	return func(b *testing.B) {
		var clock []time.Duration
		for range 1000 {
			t0 := time.Now()
			clock = append(clock, time.Since(t0))
		}
		overhead := median(clock)
		times := make([][]time.Duration, len(kinds))
		turn := 0
		for b.Loop() { // one chunk of one kind per iteration, kinds in turn
			t0 := time.Now()
			kinds[turn].run(b)
			times[turn] = append(times[turn], time.Since(t0)-overhead)
			turn = (turn + 1) % len(kinds)
		}
		if len(times[len(kinds)-1]) == 0 {
			return // too few iterations for every kind
		}
		base := float64(median(times[0])) / ratioChunk
		b.ReportMetric(base, "round_robin-ns/pick")
		for k := 1; k < len(kinds); k++ {
			per := float64(median(times[k])) / ratioChunk
			b.ReportMetric(per, kinds[k].name+"-ns/pick")
			b.ReportMetric(per/base, kinds[k].name+"-x")
		}
	}
}

// ratioChunk is how many picks ratio times at once: enough that the clock
// reads are a small part of a chunk of round_robin picks, few enough that
// most chunks run undisturbed.
const ratioChunk = 128

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
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
