package balancer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
)

// The mixed chain: client -> gateway (graylane) -> svc-m (a hop that
// handles headers as Nepxion's interceptors do) -> svc-z (graylane), over
// HTTP, every instance registered in a real Consul agent.

// nepxionInner are the headers Nepxion's interceptors never forward: each
// hop sets them to its own identity (DiscoveryConstant.N_D_SERVICE_*,
// StrategyUtil.isInnerHeaderContains, Discovery 6.x.x).
var nepxionInner = []string{
	"n-d-service-group", "n-d-service-type", "n-d-service-app-id", "n-d-service-id",
	"n-d-service-address", "n-d-service-version", "n-d-service-region", "n-d-service-env",
	"n-d-service-zone",
}

// nepxionHeaders returns the headers a Nepxion hop sends downstream for a
// request that arrived with in, mirroring FeignStrategyInterceptor.apply
// (and its twins RestTemplateStrategyInterceptor and
// WebClientStrategyInterceptor) of Discovery 6.x.x:
// applyInnerHeader sets n-d-service-group, -type, -id and -address always,
// and -version, -region, -env and -zone when set and not "default";
// applyOuterHeader then copies every inbound header whose lower-case name
// starts with n-d- (AbstractStrategyInterceptor.isHeaderContains), except
// the inner ones (isHeaderContainsExcludeInner), unchanged.
func nepxionHeaders(in http.Header, group, service, address, version string) http.Header {
	out := http.Header{}
	out.Set("n-d-service-group", group)
	out.Set("n-d-service-type", "service")
	out.Set("n-d-service-id", service)
	out.Set("n-d-service-address", address)
	if version != "" && version != "default" {
		out.Set("n-d-service-version", version)
	}
	for name, values := range in {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "n-d-") || isNepxionInner(lower) {
			continue
		}
		out.Set(name, values[0]) // StrategyContextHolder.getHeader: the first value
	}
	return out
}

func isNepxionInner(lower string) bool {
	for _, h := range nepxionInner {
		if h == lower {
			return true
		}
	}
	return false
}

// chainAnswer is what svc-m answers: itself, the identity it received and
// svc-z's answer.
type chainAnswer struct {
	M, MAddr, MSawCaller string
	Z                    string
	ZSaw                 map[string]string // the n-d-* headers svc-z received
}

// The failover and other n-d-* headers the client sends the gateway (the
// gateway is an entry, not a trusted edge: it takes them).
// n-d-region-transfer is not among them: it routes (to its regions when
// no region is routed), and these instances have no region.
var chainClientHeaders = map[string]string{
	"n-d-region-failover":  "qa",
	"n-d-env-failover":     "common",
	"n-d-zone-failover":    "z2",
	"n-d-address-failover": "127.0.0.9:1",
	"n-d-group":            "mixed",
}

const chainRuleDoc = `<rule>
  <strategy><version>{"svc-m":"1.0","svc-z":"1.0"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="blue" expression="#H['x-lane'] == 'blue'" version-id="v11"/>
    </conditions>
    <routes><route id="v11" type="version">{"svc-m":"1.1","svc-z":"1.1"}</route></routes>
  </strategy-release>
  <strategy-failover><version-failover>1.0</version-failover></strategy-failover>
</rule>`

// TestNepxionMixedChainHTTP checks that a chain with a Nepxion hop between
// two graylane hops stays on its route, and that the last hop receives the
// n-d-* headers of the first (the rule's failover value and what the client
// sent) with the middle hop's identity.
func TestNepxionMixedChainHTTP(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	reg := discovery.NewConsul(client, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = reg.Close() })
	const ruleKey = "mixed-gateway"
	if _, err := client.KV().Put(&api.KVPair{Key: ruleKey, Value: []byte(chainRuleDoc)}, nil); err != nil {
		t.Fatal(err)
	}
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: ruleKey}, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = rules.Close() })
	gw := newBalancer(t, reg, WithRuleSource(rules), WithEntry(true),
		WithIdentity(Identity{Service: "gateway", ID: "gateway-1", Address: "127.0.0.1:1", Version: "9.9", Group: "mixed"}))
	zBal := newBalancer(t, reg)
	// svc-m's load balancer: Nepxion filters instances by the n-d-*
	// headers it received; graylane's pick engine does the same here, so
	// that the test is about the headers.
	mPick := newBalancer(t, reg)
	direct := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(direct.CloseIdleConnections)

	svcZ := func(self *e2eServer) http.Handler {
		return zBal.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			saw := map[string]string{}
			for k := range r.Header {
				if strings.HasPrefix(strings.ToLower(k), "n-d-") {
					saw[strings.ToLower(k)] = r.Header.Get(k)
				}
			}
			_ = json.NewEncoder(w).Encode(chainAnswer{Z: self.version, ZSaw: saw})
		}))
	}
	svcM := func(self *e2eServer) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route, _, err := RouteFromHeader(r.Header)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			in, done, err := mPick.Pick(WithRoute(r.Context(), route), "svc-z")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer done(nil)
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+in.HostPort()+"/", nil)
			addr := self.ln.Addr().String()
			req.Header = nepxionHeaders(r.Header, "mixed", "svc-m", addr, self.version)
			resp, err := direct.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			var ans chainAnswer
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			ans.M, ans.MAddr, ans.MSawCaller = self.version, addr, r.Header.Get("n-d-service-id")
			_ = json.NewEncoder(w).Encode(ans)
		})
	}
	for _, v := range []string{"1.0", "1.1"} {
		for n := range 2 {
			startE2E(t, client, "svc-z", v, n, svcZ)
			startE2E(t, client, "svc-m", v, n, svcM)
		}
	}
	gwClient := gw.Client()
	t.Cleanup(gwClient.CloseIdleConnections)
	gateway := httptest.NewServer(gw.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://svc-m/", nil)
		resp, err := gwClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})))
	t.Cleanup(gateway.Close)
	waitHealthy(t, reg, []string{"svc-m", "svc-z"}, []string{"1.0", "1.1"})

	lanes := []struct{ lane, want string }{{"blue", "1.1"}, {"", "1.0"}}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, l := range lanes {
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := checkMixedChain(gateway.URL, l.lane, l.want); err != nil {
					errs <- fmt.Errorf("lane %q request %d: %w", l.lane, i, err)
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

// checkMixedChain sends one request through the chain and checks it.
func checkMixedChain(url, lane, want string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if lane != "" {
		req.Header.Set("x-lane", lane)
	}
	for k, v := range chainClientHeaders {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	var ans chainAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("%v: %s", err, body)
	}
	return checkChainAnswer(&ans, want)
}

// checkChainAnswer checks one chain's answer: both hops on the wanted
// version; the last hop saw the first hop's n-d-* headers and the middle
// hop's identity, never the gateway's.
func checkChainAnswer(ans *chainAnswer, want string) error {
	if ans.M != want || ans.Z != want {
		return fmt.Errorf("chain svc-m %s, svc-z %s, want both %s", ans.M, ans.Z, want)
	}
	if ans.MSawCaller != "gateway" {
		return fmt.Errorf("svc-m saw n-d-service-id %q, want the gateway's identity", ans.MSawCaller)
	}
	wantSaw := map[string]string{
		"n-d-version-failover": "1.0", // the gateway rule's <strategy-failover>
		"n-d-service-id":       "svc-m",
		"n-d-service-address":  ans.MAddr,
		"n-d-service-version":  want,
		"n-d-service-group":    "mixed",
		"n-d-service-type":     "service",
	}
	for k, v := range chainClientHeaders {
		wantSaw[k] = v
	}
	for k, v := range wantSaw {
		if got := ans.ZSaw[k]; got != v {
			return fmt.Errorf("svc-z saw %s=%q, want %q (all: %v)", k, got, v, ans.ZSaw)
		}
	}
	if ans.ZSaw["n-d-version"] == "" {
		return fmt.Errorf("svc-z saw no n-d-version: %v", ans.ZSaw)
	}
	return nil
}

// waitHealthy waits until Consul lists two passing instances of each
// version of each service.
func waitHealthy(t *testing.T, reg *discovery.Consul, services, versions []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, svc := range services {
		w := reg.Watch(svc)
		for !hasVersions(w.Snapshot(), versions) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed 2 healthy instances per version: %d", svc, w.Snapshot().Len())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
