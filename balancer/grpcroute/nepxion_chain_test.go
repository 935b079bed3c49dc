package grpcroute

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/balancer"
)

// The mixed chain over gRPC: client -> gateway (graylane interceptors) ->
// mx-m (a hop that handles metadata as Nepxion's interceptors handle
// headers) -> mx-z (graylane interceptors), every instance registered in a
// real Consul agent.

// nepxionMetadata returns the metadata a Nepxion hop sends downstream for
// a call that arrived with in, mirroring FeignStrategyInterceptor.apply
// (and RestTemplateStrategyInterceptor, WebClientStrategyInterceptor) of
// Discovery 6.x.x: applyInnerHeader sets n-d-service-group, -type, -id and
// -address always, and -version when set and not "default";
// applyOuterHeader then copies every inbound n-d-* key
// (AbstractStrategyInterceptor.isHeaderContains) except the inner
// n-d-service-* ones (isHeaderContainsExcludeInner, through
// StrategyUtil.isInnerHeaderContains), unchanged.
func nepxionMetadata(in metadata.MD, group, service, address, version string) metadata.MD {
	out := metadata.Pairs("n-d-service-group", group, "n-d-service-type", "service",
		"n-d-service-id", service, "n-d-service-address", address)
	if version != "" && version != "default" {
		out.Set("n-d-service-version", version)
	}
	inner := map[string]bool{
		"n-d-service-group": true, "n-d-service-type": true, "n-d-service-app-id": true,
		"n-d-service-id": true, "n-d-service-address": true, "n-d-service-version": true,
		"n-d-service-region": true, "n-d-service-env": true, "n-d-service-zone": true,
	}
	for k, vs := range in {
		if len(vs) == 0 || !strings.HasPrefix(k, "n-d-") || inner[k] {
			continue
		}
		out.Set(k, vs[0])
	}
	return out
}

// mixedAnswer is what mx-m answers: itself, the identity it received and
// mx-z's answer.
type mixedAnswer struct {
	M, MAddr, MSawCaller string
	Z                    string
	ZSaw                 map[string]string // the n-d-* keys mx-z received
}

// funcHop is a hop whose call is a function.
type funcHop func(ctx context.Context) (string, error)

func (f funcHop) call(ctx context.Context) (string, error) { return f(ctx) }

// n-d-region-transfer is not among them: it routes (to its regions when
// no region is routed), and these instances have no region.
var mixedClientMetadata = map[string]string{
	"n-d-region-failover":  "qa",
	"n-d-env-failover":     "common",
	"n-d-zone-failover":    "z2",
	"n-d-address-failover": "127.0.0.9:1",
	"n-d-group":            "mixed",
}

// mixedRule routes the lanes. Its version failover names a version nothing
// runs: while the connection to a routed instance is still being set up
// the picker fails over among the ready ones, and a failover version that
// runs would rightly take the call; this test is about the headers.
const mixedRule = `<rule>
  <strategy><version>{"mx-m":"1.0","mx-z":"1.0"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="blue" expression="#H['x-lane'] == 'blue'" version-id="v11"/>
    </conditions>
    <routes><route id="v11" type="version">{"mx-m":"1.1","mx-z":"1.1"}</route></routes>
  </strategy-release>
  <strategy-failover><version-failover>0.9</version-failover></strategy-failover>
</rule>`

// TestNepxionMixedChainGRPC checks that a gRPC chain with a Nepxion hop
// between two graylane hops stays on its route, and that the last hop
// receives the first hop's n-d-* keys with the middle hop's identity.
func TestNepxionMixedChainGRPC(t *testing.T) {
	w := newConsulWorld(t)
	zBal, err := balancer.New(w.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zBal.Close() })
	for _, v := range []string{"1.0", "1.1"} {
		for range 2 {
			zport := serveMixed(t, funcHop(func(ctx context.Context) (string, error) {
				md, _ := metadata.FromIncomingContext(ctx)
				saw := map[string]string{}
				for k, vs := range md {
					if strings.HasPrefix(k, "n-d-") && len(vs) > 0 {
						saw[k] = vs[0]
					}
				}
				b, err := json.Marshal(mixedAnswer{Z: v, ZSaw: saw})
				return string(b), err
			}), NewInterceptors(zBal))
			w.register(t, "mx-z", v, zport)
		}
	}
	// mx-m has no graylane interceptor: its calls carry the metadata it
	// builds, and graylane's picker (as Nepxion's load balancer would)
	// routes them by the n-d-version they carry.
	toZ := dialService(t, w.rb, "consul:///mx-z", nil)
	for _, v := range []string{"1.0", "1.1"} {
		for range 2 {
			var addr string
			mport := serveMixed(t, funcHop(func(ctx context.Context) (string, error) {
				in, _ := metadata.FromIncomingContext(ctx)
				out := metadata.NewOutgoingContext(ctx, nepxionMetadata(in, "mixed", "mx-m", addr, v))
				rest, err := callHop(out, toZ)
				if err != nil {
					return "", err
				}
				var ans mixedAnswer
				if err := json.Unmarshal([]byte(rest), &ans); err != nil {
					return "", err
				}
				ans.M, ans.MAddr = v, addr
				if vs := in.Get("n-d-service-id"); len(vs) > 0 {
					ans.MSawCaller = vs[0]
				}
				b, err := json.Marshal(ans)
				return string(b), err
			}), nil)
			addr = fmt.Sprintf("127.0.0.1:%d", mport)
			w.register(t, "mx-m", v, mport)
		}
	}
	gwBal, err := balancer.New(w.reg, balancer.WithRule(mustRule(t, mixedRule)), balancer.WithEntry(true),
		balancer.WithIdentity(balancer.Identity{Service: "gateway", ID: "gateway-1", Address: "127.0.0.1:1", Group: "mixed"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gwBal.Close() })
	gwICS := NewInterceptors(gwBal)
	toM := dialService(t, w.rb, "consul:///mx-m", gwICS)
	gwPort := serveMixed(t, funcHop(func(ctx context.Context) (string, error) { return callHop(ctx, toM) }), gwICS)
	w.waitInstances(t, "mx-z", 4)
	w.waitInstances(t, "mx-m", 4)
	gw := dialDirect(t, gwPort)

	lanes := []struct{ lane, want string }{{"blue", "1.1"}, {"", "1.0"}}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, l := range lanes {
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kv := []string{}
				if l.lane != "" {
					kv = append(kv, "x-lane", l.lane)
				}
				for k, v := range mixedClientMetadata {
					kv = append(kv, k, v)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				body, err := callHop(metadata.AppendToOutgoingContext(ctx, kv...), gw)
				if err == nil {
					err = checkMixedAnswer(body, l.want)
				}
				if err != nil {
					errs <- fmt.Errorf("lane %q call %d: %w", l.lane, i, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkMixedAnswer checks one chain's answer: both hops on the wanted
// version; the last hop saw the first hop's n-d-* keys and the middle
// hop's identity, never the gateway's.
func checkMixedAnswer(body, want string) error {
	var ans mixedAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		return fmt.Errorf("%v: %s", err, body)
	}
	if ans.M != want || ans.Z != want {
		return fmt.Errorf("chain mx-m %s, mx-z %s, want both %s", ans.M, ans.Z, want)
	}
	if ans.MSawCaller != "gateway" {
		return fmt.Errorf("mx-m saw n-d-service-id %q, want the gateway's identity", ans.MSawCaller)
	}
	wantSaw := map[string]string{
		"n-d-version-failover": "0.9", // the gateway rule's <strategy-failover>
		"n-d-service-id":       "mx-m",
		"n-d-service-address":  ans.MAddr,
		"n-d-service-version":  want,
		"n-d-service-group":    "mixed",
		"n-d-service-type":     "service",
	}
	for k, v := range mixedClientMetadata {
		wantSaw[k] = v
	}
	for k, v := range wantSaw {
		if got := ans.ZSaw[k]; got != v {
			return fmt.Errorf("mx-z saw %s=%q, want %q (all: %v)", k, got, v, ans.ZSaw)
		}
	}
	return nil
}

// serveMixed starts a gRPC server for hop on a loopback port, with ics's
// server interceptors when ics is not nil, and returns the port.
func serveMixed(t *testing.T, hop hopServer, ics *Interceptors) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.ServerOption{grpc.ForceServerCodecV2(rawCodec{})}
	if ics != nil {
		opts = append(opts, ics.ServerOptions()...)
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(&hopDesc, hop)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}
