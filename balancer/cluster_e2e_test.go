package balancer_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
)

const clusterRule = `<rule><strategy-release>
<conditions type="blue-green">
  <condition id="c1" expression="#H['xyz'] == '1'" version-id="old"/>
  <condition id="c2" expression="#H['xyz'] == '2'" version-id="new"/>
</conditions>
<routes>
  <route id="old" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
  <route id="new" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
</routes>
</strategy-release></rule>`

// TestClusterLeaderLossUnderLoad runs a two-hop chain (gateway transport ->
// svc-a -> svc-b, versions 1.0 and 1.1 of each, the blue-green rule in KV)
// against the client agent of a real 3-server Consul cluster, with clients
// sending requests throughout, and kills the leader. Every request must
// succeed and every chain must stay on the version its header selects,
// before, during and after the election; a registration made through the
// new leader takes traffic.
func TestClusterLeaderLossUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against a real Consul cluster")
	}
	cl := consultest.StartCluster(t, 3)
	client := cl.Agent().Client()
	const ruleKey = "graylane-cluster-chain"
	if _, err := client.KV().Put(&api.KVPair{Key: ruleKey, Value: []byte(clusterRule)}, nil); err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewConsul(client)
	t.Cleanup(func() { _ = reg.Close() })
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: ruleKey})
	t.Cleanup(func() { _ = rules.Close() })
	retry := balancer.WithRetry(balancer.RetryPolicy{Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	gw, err := balancer.New(reg, balancer.WithRuleSource(rules), balancer.WithEntry(true), retry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	aBal, err := balancer.New(reg, balancer.WithRuleSource(rules), retry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = aBal.Close() })
	aBase := &http.Transport{MaxIdleConnsPerHost: 64}
	gwBase := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(aBase.CloseIdleConnections)
	t.Cleanup(gwBase.CloseIdleConnections)
	aClient := &http.Client{Transport: aBal.Transport(aBase)}
	gwClient := &http.Client{Transport: gw.Transport(gwBase), Timeout: 30 * time.Second}

	var served sync.Map // instance name -> *atomic.Int64
	start := func(service, version, name string, h func(w http.ResponseWriter, r *http.Request) string) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &atomic.Int64{}
		served.Store(name, n)
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: aBal.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			if body := h(w, r); body != "" {
				fmt.Fprintf(w, "%s=%s>%s", service, version, body)
			}
		}))}
		go func() { _ = srv.Serve(ln) }()
		r, err := discovery.Register(context.Background(), client, discovery.Registration{
			Service: service, Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Version: version,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(); _ = srv.Close() })
	}
	leaf := func(http.ResponseWriter, *http.Request) string { return "end" }
	middle := func(w http.ResponseWriter, r *http.Request) string {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://svc-b/", nil)
		resp, err := aClient.Do(req)
		if err != nil {
			http.Error(w, "svc-a: "+err.Error(), http.StatusBadGateway)
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			http.Error(w, "svc-b: "+string(body), http.StatusBadGateway)
			return ""
		}
		return string(body)
	}
	for _, v := range []string{"1.0", "1.1"} {
		start("svc-b", v, "b-"+v, leaf)
		start("svc-a", v, "a-"+v, middle)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, svc := range []string{"svc-a", "svc-b"} {
		w := reg.Watch(svc)
		for w.Snapshot().Len() < 2 || gw.Rule() == nil || aBal.Rule() == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %d instances, rules %v/%v", svc, w.Snapshot().Len(), gw.Rule() != nil, aBal.Rule() != nil)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	var (
		okN, failN, mixedN atomic.Int64
		firstErr           atomic.Value
		stop               = make(chan struct{})
		wg                 sync.WaitGroup
	)
	want := map[string]string{"1": "svc-a=1.0>svc-b=1.0>end", "2": "svc-a=1.1>svc-b=1.1>end"}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xyz := []string{"1", "2"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://svc-a/", nil)
				req.Header.Set("xyz", xyz)
				resp, err := gwClient.Do(req)
				if err != nil {
					failN.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode != http.StatusOK:
					failN.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d: %s", resp.StatusCode, body))
				case string(body) != want[xyz]:
					mixedN.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("xyz=%s: chain %q, want %q", xyz, body, want[xyz]))
				default:
					okN.Add(1)
				}
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	until := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	until("requests before the kill", func() bool { return okN.Load() >= 200 })

	leader, err := cl.Leader()
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill(t)
	atKill := okN.Load()
	next, err := cl.WaitLeader(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s killed; %s leads after %d requests", leader.Node(), next.Node(), okN.Load()-atKill)

	// A registration through the new leader takes traffic of its version.
	start("svc-b", "1.1", "b-1.1-new", leaf)
	until("the new svc-b instance to serve", func() bool {
		n, _ := served.Load("b-1.1-new")
		return n.(*atomic.Int64).Load() > 0
	})
	mark := okN.Load()
	until("requests after the election", func() bool { return okN.Load() >= mark+200 })
	stopLoad()

	t.Logf("%d requests, %d failed, %d mixed chains", okN.Load(), failN.Load(), mixedN.Load())
	if failN.Load() != 0 || mixedN.Load() != 0 {
		t.Fatalf("%d failed requests and %d mixed chains; first: %v", failN.Load(), mixedN.Load(), firstErr.Load())
	}
	for _, name := range []string{"a-1.0", "a-1.1", "b-1.0", "b-1.1"} {
		if n, _ := served.Load(name); n.(*atomic.Int64).Load() == 0 {
			t.Errorf("%s served nothing", name)
		}
	}
}
