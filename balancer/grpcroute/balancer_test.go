package grpcroute

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

func parseCfg(t testing.TB, bb *BalancerBuilder, js string) serviceconfig.LoadBalancingConfig {
	t.Helper()
	cfg, err := bb.ParseConfig(json.RawMessage(js))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func versionRoute(t testing.TB, v string) context.Context {
	t.Helper()
	val, err := rule.ParseValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersion, val))
}

// pickVersions picks n times with ctx and counts the versions picked.
func pickVersions(t testing.TB, cc *fakeCC, ctx context.Context, n int) map[string]int {
	t.Helper()
	p := cc.current().Picker
	got := make(map[string]int)
	for range n {
		res, err := p.Pick(grpcbalancer.PickInfo{Ctx: ctx, FullMethodName: "/svc/M"})
		if err != nil {
			t.Fatalf("pick: %v", err)
		}
		addr := res.SubConn.(*fakeSubConn).addr
		got[versionOfAddr(addr)]++
		if res.Done != nil {
			res.Done(grpcbalancer.DoneInfo{})
		}
	}
	return got
}

// versionOfAddr maps fleet's 10.0.<v>.<i> addresses back to the version
// index's name as fleet assigns them in these tests.
func versionOfAddr(addr string) string {
	switch {
	case strings.HasPrefix(addr, "10.0.0."):
		return "1.0"
	case strings.HasPrefix(addr, "10.0.1."):
		return "1.1"
	case strings.HasPrefix(addr, "10.0.2."):
		return "1.2"
	}
	return "?"
}

func TestPickRoutesByVersion(t *testing.T) {
	cc, _, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, fleet("svc-a", 3, "1.0", "1.1", "1.2"), true)
	if s := cc.current().ConnectivityState; s != connectivity.Ready {
		t.Fatalf("state %v, want READY", s)
	}
	tests := []struct {
		give string
		want map[string]int
		n    int // picks; if 0, 30
	}{
		{give: "1.1", want: map[string]int{"1.1": 30}},
		{give: `{"svc-a":"1.2","svc-b":"1.0"}`, want: map[string]int{"1.2": 30}},
		{give: "1.0;1.2", want: map[string]int{"1.0": 15, "1.2": 15}},
		{give: `{"svc-b":"1.0"}`, want: map[string]int{"1.0": 9, "1.1": 9, "1.2": 9}, n: 27},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			n := tt.n
			if n == 0 {
				n = 30
			}
			got := pickVersions(t, cc, versionRoute(t, tt.give), n)
			if len(got) != len(tt.want) {
				t.Fatalf("picked %v, want %v", got, tt.want)
			}
			for v, n := range tt.want {
				if got[v] != n {
					t.Fatalf("picked %v, want %v (round robin)", got, tt.want)
				}
			}
		})
	}
	// Without any route: every instance, evenly.
	if got := pickVersions(t, cc, context.Background(), 90); got["1.0"] != 30 || got["1.1"] != 30 || got["1.2"] != 30 {
		t.Fatalf("unrouted picks %v, want 30 each", got)
	}
}

func TestPickVersionWeight(t *testing.T) {
	cc, _, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, fleet("svc-a", 7, "1.0", "1.1"), true)
	ctx := balancer.WithRoute(context.Background(), balancer.Route{}.With(rule.TypeVersionWeight, rule.PlainValue("1.0=90;1.1=10")))
	got := pickVersions(t, cc, ctx, 10000)
	if got["1.0"] < 8800 || got["1.0"] > 9200 || got["1.0"]+got["1.1"] != 10000 {
		t.Fatalf("split %v, want 90/10 +-2", got)
	}
}

func TestPickStrictEmpty(t *testing.T) {
	cc, _, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, fleet("svc-a", 2, "1.0", "1.1"), true)
	_, err := cc.current().Picker.Pick(grpcbalancer.PickInfo{Ctx: versionRoute(t, "2.0")})
	var nre *NoReadyInstanceError
	if !errors.As(err, &nre) || !errors.Is(err, balancer.ErrNoInstance) {
		t.Fatalf("err %v, want a NoReadyInstanceError", err)
	}
	for _, want := range []string{`"svc-a"`, "version=2.0", "4 ready of 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q lacks %q", err, want)
		}
	}
	// Not a status error: gRPC ends fail-fast calls with Unavailable and
	// this message, and lets wait-for-ready calls wait for a new picker.
	if _, isStatus := status.FromError(err); isStatus {
		t.Fatal("pick error is a status; wait-for-ready calls would fail instead of waiting")
	}
}

func TestPickPermissive(t *testing.T) {
	bb := NewBalancerBuilder()
	cc, _, _ := buildBalancer(t, bb, "consul:///svc-a", parseCfg(t, bb, `{"failover":"permissive"}`), fleet("svc-a", 2, "1.0", "1.1"), true)
	if got := pickVersions(t, cc, versionRoute(t, "2.0"), 10); got["1.0"] != 10 {
		t.Fatalf("picked %v, want the stable version 1.0", got)
	}
}

func TestPickWaitsForConnectingRoute(t *testing.T) {
	in := fleet("svc-a", 1, "1.0", "1.1")
	cc, _, st := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, in, false)
	cc.ready(t, st.Addresses[0].Addr) // 1.0 ready, 1.1 still connecting
	cc.connecting(t, st.Addresses[1].Addr)
	p := cc.current().Picker
	if _, err := p.Pick(grpcbalancer.PickInfo{Ctx: versionRoute(t, "1.1")}); !errors.Is(err, grpcbalancer.ErrNoSubConnAvailable) {
		t.Fatalf("err %v, want ErrNoSubConnAvailable while 1.1 connects", err)
	}
	if _, err := p.Pick(grpcbalancer.PickInfo{Ctx: versionRoute(t, "9.9")}); !errors.Is(err, balancer.ErrNoInstance) {
		t.Fatalf("err %v, want ErrNoInstance for a version nobody has", err)
	}
	cc.ready(t, st.Addresses[1].Addr)
	if got := pickVersions(t, cc, versionRoute(t, "1.1"), 3); got["1.1"] != 3 {
		t.Fatalf("picked %v after 1.1 became ready", got)
	}
}

func TestNoEndpoints(t *testing.T) {
	cc, b, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, nil, false)
	st := cc.current()
	if st.ConnectivityState != connectivity.TransientFailure {
		t.Fatalf("state %v, want TRANSIENT_FAILURE", st.ConnectivityState)
	}
	_, err := st.Picker.Pick(grpcbalancer.PickInfo{Ctx: context.Background()})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `no instance of "svc-a"`) {
		t.Fatalf("err %v, want Unavailable naming svc-a", err)
	}
	b.ResolverError(errors.New("consul down"))
	_, err = cc.current().Picker.Pick(grpcbalancer.PickInfo{Ctx: context.Background()})
	if !strings.Contains(err.Error(), "consul down") {
		t.Fatalf("err %v, want the resolver's error", err)
	}
}

func TestOutgoingMetadataRoute(t *testing.T) {
	cc, _, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, fleet("svc-a", 2, "1.0", "1.1"), true)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "n-d-version", `{"svc-a":"1.1"}`)
	if got := pickVersions(t, cc, ctx, 4); got["1.1"] != 4 {
		t.Fatalf("picked %v, want 1.1 from the outgoing metadata", got)
	}
	// The context's route wins over stray metadata.
	ctx = metadata.AppendToOutgoingContext(versionRoute(t, "1.0"), "n-d-version", "1.1")
	if got := pickVersions(t, cc, ctx, 4); got["1.0"] != 4 {
		t.Fatalf("picked %v, want 1.0 from the context route", got)
	}
}

func TestAttributeChangeKeepsConnections(t *testing.T) {
	in := fleet("svc-a", 2, "1.0")
	cc, b, _ := buildBalancer(t, NewBalancerBuilder(), "consul:///svc-a", nil, in, true)
	created := cc.created
	in[1].Version = "1.1" // same address, new version
	st := StateFromSnapshot(discovery.NewSnapshot("svc-a", 2, in))
	if err := b.UpdateClientConnState(grpcbalancer.ClientConnState{ResolverState: st}); err != nil {
		t.Fatal(err)
	}
	if cc.created != created {
		t.Fatalf("%d new sub-connections for a version change", cc.created-created)
	}
	res, err := cc.current().Picker.Pick(grpcbalancer.PickInfo{Ctx: versionRoute(t, "1.1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.SubConn.(*fakeSubConn).addr; got != in[1].HostPort() {
		t.Fatalf("picked %s, want %s, now at 1.1", got, in[1].HostPort())
	}
}

func TestEjection(t *testing.T) {
	bb := NewBalancerBuilder()
	cfg := parseCfg(t, bb, `{"ejection":{"failures":2,"duration":"1m"}}`)
	cc, _, _ := buildBalancer(t, bb, "consul:///svc-a", cfg, fleet("svc-a", 2, "1.0"), true)
	p := cc.current().Picker
	ctx := context.Background()
	pick := func() (string, grpcbalancer.PickResult) {
		res, err := p.Pick(grpcbalancer.PickInfo{Ctx: ctx})
		if err != nil {
			t.Fatal(err)
		}
		return res.SubConn.(*fakeSubConn).addr, res
	}
	bad, _ := pick()
	fail := func(code codes.Code) {
		for {
			addr, res := pick()
			if addr == bad {
				res.Done(grpcbalancer.DoneInfo{Err: status.Error(code, "x")})
				return
			}
			res.Done(grpcbalancer.DoneInfo{})
		}
	}
	// Errors of the call itself say nothing against the instance.
	for range 5 {
		fail(codes.NotFound)
		fail(codes.Canceled)
	}
	seen := map[string]int{}
	for range 10 {
		addr, res := pick()
		seen[addr]++
		res.Done(grpcbalancer.DoneInfo{})
	}
	if seen[bad] == 0 {
		t.Fatalf("instance ejected for NotFound/Canceled: %v", seen)
	}
	fail(codes.Unavailable)
	fail(codes.Unavailable)
	for range 10 {
		if addr, res := pick(); addr == bad {
			t.Fatalf("picked %s after two failures in a row", bad)
		} else {
			res.Done(grpcbalancer.DoneInfo{})
		}
	}
}

func TestParseConfig(t *testing.T) {
	bb := NewBalancerBuilder(WithPolicy(balancer.LeastInFlight), WithEjection(balancer.Ejection{Failures: 3}))
	tests := []struct {
		give    string
		want    Config
		wantErr string
	}{
		{give: ``, want: Config{Policy: balancer.LeastInFlight, Ejection: balancer.Ejection{Failures: 3}}},
		{give: `{}`, want: Config{Policy: balancer.LeastInFlight, Ejection: balancer.Ejection{Failures: 3}}},
		{give: `{"policy":"weighted-random","failover":"Permissive","service":" svc-a ","maxCachedRoutes":10,"ejection":{"duration":"2s"}}`,
			want: Config{Service: "svc-a", Policy: balancer.WeightedRandom, Failover: balancer.Permissive, MaxCachedRoutes: 10,
				Ejection: balancer.Ejection{Failures: 3, Duration: 2 * time.Second}}},
		{give: `{"ejection":{"failures":-1}}`, want: Config{Policy: balancer.LeastInFlight, Ejection: balancer.Ejection{Failures: -1}}},
		{give: `{"policy":"random"}`, wantErr: `policy "random"`},
		{give: `{"failover":"maybe"}`, wantErr: `failover "maybe"`},
		{give: `{"ejection":{"duration":"soon"}}`, wantErr: `ejection duration "soon"`},
		{give: `{"ejection":{"duration":"-1s"}}`, wantErr: `ejection duration "-1s"`},
		{give: `{"maxCachedRoutes":-2}`, wantErr: "maxCachedRoutes -2"},
		{give: `{"polcy":"round-robin"}`, wantErr: `unknown field "polcy"`},
		{give: `{"policy":1}`, wantErr: "policy"},
		{give: `{} {}`, wantErr: "data after"},
		{give: `[`, wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := bb.ParseConfig(json.RawMessage(tt.give))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want ErrBadConfig containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.breakers = bb.opts.cfg.breakers // the builder's own, on by default
			if *got.(*Config) != tt.want {
				t.Fatalf("config %+v, want %+v", *got.(*Config), tt.want)
			}
		})
	}
}

// TestIdentityAndSwitchesReachThePicker checks WithIdentity and
// WithSwitches: the builder's defaults survive a service config and the
// picker's selector applies them (zone affinity keeps the caller's zone).
func TestIdentityAndSwitchesReachThePicker(t *testing.T) {
	bb := NewBalancerBuilder(WithIdentity(balancer.Identity{Service: "svc-a", Zone: "z2"}), WithSwitches(balancer.Switches{ZoneAffinity: true}))
	lbc, err := bb.ParseConfig(json.RawMessage(`{"policy":"round-robin"}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := *lbc.(*Config)
	if cfg.Self.Zone != "z2" || !cfg.Switches.ZoneAffinity {
		t.Fatalf("config lost the builder's identity or switches: %+v", cfg)
	}
	ready := []discovery.Instance{
		{ID: "b1", Service: "svc-b", Address: "10.0.0.1", Port: 1, Version: "1.0", Zone: "z1"},
		{ID: "b2", Service: "svc-b", Address: "10.0.0.2", Port: 2, Version: "1.0", Zone: "z2"},
	}
	p := newPicker("svc-b", ready, []grpcbalancer.Picker{nil, nil}, nil, 2, cfg, balancer.NewTracker(balancer.Ejection{Failures: -1}))
	for range 4 {
		i, err := p.sel.Pick(nil, 0)
		if err != nil || p.sel.Instance(i).ID != "b2" {
			t.Fatalf("picked %d (%v), want the caller's zone", i, err)
		}
	}
}

// TestWithBalancerAppliesDiscovery checks WithBalancer: the picker applies
// the <discovery> section of the balancer's rule for its identity, as in
// DiscoveryGuide's testVersionRuleGray (Nepxion/DiscoveryGuide, branch
// 6.x.x, discovery-rule-version.xml: a 1.0 calls only b 1.0).
func TestWithBalancerAppliesDiscovery(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule><discovery><version>
  <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-version-value="1.0" provider-version-value="1.0"/>
</version></discovery></rule>`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(discovery.NewStatic(), balancer.WithRule(r), balancer.WithIdentity(balancer.Identity{Service: "svc-a", Version: "1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lbc, err := NewBalancerBuilder(WithBalancer(b)).ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := []discovery.Instance{
		{ID: "b10", Service: "svc-b", Address: "10.0.0.1", Port: 1, Version: "1.0"},
		{ID: "b11", Service: "svc-b", Address: "10.0.0.2", Port: 2, Version: "1.1"},
	}
	hits := make([]countPicker, 2)
	p := newPicker("svc-b", ready, []grpcbalancer.Picker{&hits[0], &hits[1]}, nil, 2, *lbc.(*Config), balancer.NewTracker(balancer.Ejection{Failures: -1}))
	for range 6 {
		res, err := p.Pick(grpcbalancer.PickInfo{Ctx: context.Background(), FullMethodName: "/svc/M"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Done != nil {
			res.Done(grpcbalancer.DoneInfo{})
		}
	}
	if hits[0].n != 6 || hits[1].n != 0 {
		t.Errorf("b 1.0 took %d calls, b 1.1 %d; want 6 and 0", hits[0].n, hits[1].n)
	}
}

// countPicker is a child picker counting its picks.
type countPicker struct{ n int }

func (c *countPicker) Pick(grpcbalancer.PickInfo) (grpcbalancer.PickResult, error) {
	c.n++
	return grpcbalancer.PickResult{}, nil
}
