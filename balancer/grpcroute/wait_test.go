package grpcroute

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// TestStrictEmptyOverRealChannel checks what callers see when a route has
// no instance: fail-fast calls end with Unavailable naming service and
// route; wait-for-ready calls wait, and succeed once an instance of the
// routed version arrives.
func TestStrictEmptyOverRealChannel(t *testing.T) {
	reg := discovery.NewStatic()
	_, p1 := serveHop(t, &hopNode{name: "svc-a", version: "1.0", id: "a1"})
	reg.Set("svc-a", discovery.Instance{ID: "a1", Address: "127.0.0.1", Port: p1, Version: "1.0"})
	conn := dialService(t, NewResolverBuilder(reg), "consul:///svc-a", nil)

	ctx, cancel := context.WithTimeout(versionRoute(t, "1.0"), 5*time.Second)
	defer cancel()
	if trace, err := callHop(ctx, conn); err != nil || trace != "svc-a@1.0#a1" {
		t.Fatalf("1.0 call: %q, %v", trace, err)
	}

	ctx11, cancel11 := context.WithTimeout(versionRoute(t, "1.1"), 5*time.Second)
	defer cancel11()
	_, err := callHop(ctx11, conn)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `no ready instance of "svc-a" for route version=1.1`) {
		t.Fatalf("fail-fast 1.1 call: %v, want Unavailable naming svc-a and version=1.1", err)
	}

	type result struct {
		trace string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var out []byte
		in := []byte("hop")
		err := conn.Invoke(ctx11, hopCall, &in, &out, grpc.ForceCodecV2(rawCodec{}), grpc.WaitForReady(true))
		done <- result{string(out), err}
	}()
	select {
	case r := <-done:
		t.Fatalf("wait-for-ready call returned before 1.1 existed: %q, %v", r.trace, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	_, p2 := serveHop(t, &hopNode{name: "svc-a", version: "1.1", id: "a2"})
	if err := reg.Add(discovery.Instance{Service: "svc-a", ID: "a2", Address: "127.0.0.1", Port: p2, Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.trace != "svc-a@1.1#a2" {
		t.Fatalf("wait-for-ready 1.1 call: %q, %v", r.trace, r.err)
	}
}

func TestEndpointsOfOtherResolvers(t *testing.T) {
	bb := NewBalancerBuilder()
	cc := newFakeCC()
	b := bb.Build(cc, grpcbalancer.BuildOptions{Target: resolver.Target{}})
	defer b.Close()
	eps := []resolver.Endpoint{
		{Addresses: []resolver.Address{{Addr: "127.0.0.1:1001"}}},
		{Addresses: []resolver.Address{{Addr: "127.0.0.1:1002"}}},
	}
	if err := b.UpdateClientConnState(grpcbalancer.ClientConnState{
		ResolverState:  resolver.State{Endpoints: eps},
		BalancerConfig: parseCfg(t, bb, `{"service":"svc-x"}`),
	}); err != nil {
		t.Fatal(err)
	}
	cc.ready(t, "127.0.0.1:1001")
	cc.ready(t, "127.0.0.1:1002")
	ctx := versionRoute(t, `{"svc-x":"default"}`)
	for _, tt := range []struct{ give, want string }{
		{give: `{"svc-x":"1002"}`, want: "127.0.0.1:1002"}, // address filter by port
		{give: `127.0.0.1:1001`, want: "127.0.0.1:1001"},
	} {
		rctx := routeWithAddress(t, ctx, tt.give)
		for range 10 {
			res, err := cc.current().Picker.Pick(grpcbalancer.PickInfo{Ctx: rctx})
			if err != nil {
				t.Fatalf("%s: %v", tt.give, err)
			}
			if got := res.SubConn.(*fakeSubConn).addr; got != tt.want {
				t.Fatalf("address route %s picked %s, want %s", tt.give, got, tt.want)
			}
		}
	}
}

func TestWeightedRandomPolicy(t *testing.T) {
	in := fleet("svc-a", 2, "1.0")
	in[0].Weight, in[1].Weight = 100, 300
	bb := NewBalancerBuilder()
	cc, _, _ := buildBalancer(t, bb, "consul:///svc-a", parseCfg(t, bb, `{"policy":"weighted-random"}`), in, true)
	counts := map[string]int{}
	p := cc.current().Picker
	for range 10000 {
		res, err := p.Pick(grpcbalancer.PickInfo{Ctx: context.Background()})
		if err != nil {
			t.Fatal(err)
		}
		counts[res.SubConn.(*fakeSubConn).addr]++
		res.Done(grpcbalancer.DoneInfo{})
	}
	if heavy := counts[in[1].HostPort()]; heavy < 7300 || heavy > 7700 {
		t.Fatalf("picks %v, want 25/75 by instance weight", counts)
	}
}

func routeWithAddress(t *testing.T, ctx context.Context, address string) context.Context {
	t.Helper()
	r, _ := balancer.RouteFrom(ctx)
	v, err := rule.ParseValue(address)
	if err != nil {
		t.Fatal(err)
	}
	r.Set(rule.TypeAddress, v)
	return balancer.WithRoute(ctx, r)
}
