package balancer

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
)

// consulDiscoRule is DiscoveryGuide's discovery-rule-region.xml
// (Nepxion/DiscoveryGuide, branch 6.x.x, discovery-guide-test-automation/
// src/test/resources/, case testRegionRuleGray) on this test's services,
// with a <discovery> blacklist as Nepxion's example service rule.xml
// writes one (Nepxion/Discovery, 6.x.x).
const consulDiscoRule = `<rule><discovery>
  <blacklist><service service-name="svc-b" filter-value="127.0.0.2"/></blacklist>
  <region>
    <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-region-value="dev" provider-region-value="dev"/>
    <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-region-value="qa" provider-region-value="qa"/>
  </region>
</discovery></rule>`

// TestDiscoveryFiltersConsul registers svc-b in a real Consul agent (in
// dev and qa, one dev instance under another host address), serves the
// rule from Consul's KV store and picks as svc-a in dev: only the dev
// instance the blacklist leaves. When the rule drops the blacklist, the
// other dev instance is picked too.
func TestDiscoveryFiltersConsul(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	ports := map[int]string{}
	for _, in := range []struct{ name, addr, region string }{
		{"dev", "127.0.0.1", "dev"},
		{"qa", "127.0.0.1", "qa"},
		{"dev-other-host", "127.0.0.2", "dev"},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		port := ln.Addr().(*net.TCPAddr).Port
		r, err := discovery.Register(context.Background(), client, discovery.Registration{
			Service: "svc-b", Address: in.addr, Port: port, Version: "1.0", Region: in.region,
			Check: discovery.Check{HTTP: "http://" + ln.Addr().String() + "/", Interval: time.Second, Timeout: 5 * time.Second},
		})
		if err != nil {
			_ = srv.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = r.Close()
			_ = srv.Close()
		})
		ports[port] = in.name
	}
	const key = "disco-filter-rule"
	put := func(doc string) {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: key, Value: []byte(doc)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(consulDiscoRule)
	reg := discovery.NewConsul(client, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = reg.Close() })
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: key}, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = rules.Close() })
	b := newBalancer(t, reg, WithRuleSource(rules), WithReadyWait(time.Minute),
		WithIdentity(Identity{Service: "svc-a", Region: "dev"}))
	if err := b.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	// picked returns the instances 30 picks reached, by name.
	picked := func() []string {
		seen := map[string]bool{}
		for range 30 {
			in, done, err := b.Pick(context.Background(), "svc-b")
			if err != nil {
				return []string{err.Error()}
			}
			done(nil)
			seen[ports[in.Port]] = true
		}
		var out []string
		for n := range seen {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	// waitFor waits until every instance is healthy in Consul (all three
	// answer the health query) and the picks reach want.
	waitFor := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			entries, _, err := client.Health().Service("svc-b", "", true, nil)
			got := picked()
			if err == nil && len(entries) == 3 && slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: picked %s (%d healthy), want %v", what, strings.Join(got, ", "), len(entries), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("region and host filter", "dev")
	// Once settled, every pick stays there.
	for range 5 {
		if got := picked(); !slices.Equal(got, []string{"dev"}) {
			t.Fatalf("picked %v, want only dev", got)
		}
	}
	put(strings.Replace(consulDiscoRule, `<service service-name="svc-b" filter-value="127.0.0.2"/>`, "", 1))
	waitFor("region filter alone", "dev", "dev-other-host")
}
