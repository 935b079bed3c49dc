package balancer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
)

const (
	kvGroupRule = `<rule>
  <strategy><version>1.0</version></strategy>
  <strategy-blacklist><id>bad-*</id></strategy-blacklist>
</rule>`
	kvServiceRule = `<rule><strategy><version>1.1</version></strategy></rule>`
)

// TestKVRulesAsNepxion checks, against a real Consul agent, how a
// balancer reads the two rule keys as a Nepxion service does: the service
// rule is assembled over the group rule section by section
// (RuleEntityWrapper.assemble, Discovery 6.x.x), a blank value clears
// that key's rule (ConfigAdapter.callbackConfig fires RuleClearedEvent),
// and a malformed value keeps the last good rule.
func TestKVRulesAsNepxion(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	keys := discovery.NepxionRuleKeys("grp", "svc-x")
	put := func(key, value string) {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(keys.Group, kvGroupRule)
	put(keys.Service, kvServiceRule)
	rules := discovery.NewConsulRules(client, keys, discovery.WithRateLimit(0, 1))
	defer rules.Close()
	b := newBalancer(t, staticFleet(1, "1.0"), WithRuleSource(rules), WithReadyWait(time.Minute))
	if err := b.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Both: the service's strategy, the group's blacklist.
	state := func() (version, blacklist string) {
		r := b.Rule()
		if r == nil {
			return "<none>", ""
		}
		return r.Strategy.Version.String(), r.Blacklist.ID.String()
	}
	waitState := func(what, version, blacklist string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, bl := state()
			if v == version && bl == blacklist {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rule version %q blacklist %q, want %q %q", what, v, bl, version, blacklist)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitState("merged", "1.1", "bad-*")
	if o := b.Debug().Rule.Origin; o.Key != keys.Service || o.BaseKey != keys.Group || o.BaseIndex == 0 {
		t.Errorf("debug origin %+v, want the service key merged over the group key", o)
	}

	// A malformed service value keeps the last good service rule, still
	// merged with the group's, which may change meanwhile.
	put(keys.Service, "<rule><strategy>")
	waitRejected(t, b, keys.Service)
	put(keys.Group, strings.Replace(kvGroupRule, "bad-*", "worse-*", 1))
	waitState("group change under a bad service value", "1.1", "worse-*")

	// A blank service value clears the service rule: the group rule alone.
	put(keys.Service, "")
	waitState("blank service value", "1.0", "worse-*")
	// A blank group value clears it too: no rule.
	put(keys.Group, " \n")
	waitState("blank group value", "<none>", "")
}

// waitRejected waits until the debug record shows a rejection of key.
func waitRejected(t *testing.T, b *Balancer, key string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rj := b.rejected.Load(); rj != nil && rj.key == key {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rejection of %s recorded", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadyReportsRejectedFirstDocument checks that Ready does not report
// a rule in force when the first document is malformed: after the ready
// wait it returns ErrRuleRejected naming the document, and nil once a good
// one arrives.
func TestReadyReportsRejectedFirstDocument(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	keys := discovery.NepxionRuleKeys("grp", "svc-y")
	if _, err := client.KV().Put(&api.KVPair{Key: keys.Service, Value: []byte("<rule><strategy>")}, nil); err != nil {
		t.Fatal(err)
	}
	rules := discovery.NewConsulRules(client, keys, discovery.WithRateLimit(0, 1))
	defer rules.Close()
	b := newBalancer(t, staticFleet(1, "1.0"), WithRuleSource(rules), WithReadyWait(50*time.Millisecond))
	err := b.Ready(context.Background())
	if !errors.Is(err, ErrRuleRejected) || !strings.Contains(err.Error(), `"grp-svc-y"`) {
		t.Fatalf("Ready = %v, want ErrRuleRejected naming grp-svc-y", err)
	}
	if b.Rule() != nil {
		t.Fatal("a rule is in force")
	}
	if _, err := client.KV().Put(&api.KVPair{Key: keys.Service, Value: []byte(kvServiceRule)}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := b.Ready(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrRuleRejected) {
			t.Fatalf("Ready = %v", err)
		}
	}
	if r := b.Rule(); r == nil || r.Strategy.Version.String() != "1.1" {
		t.Fatalf("rule in force %v, want the good document", r)
	}

	// A static source that starts malformed reports it the same way.
	src := discovery.NewStaticRules([]byte("{"))
	defer src.Close()
	s := newBalancer(t, staticFleet(1, "1.0"), WithRuleSource(src), WithReadyWait(-1))
	if err := s.Ready(context.Background()); !errors.Is(err, ErrRuleRejected) || !strings.Contains(err.Error(), "static") {
		t.Fatalf("static: Ready = %v", err)
	}
}
