package discovery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap/zaptest"
)

// TestIntegrationClusterLeaderLoss runs the watches and the registrar
// against the client agent of a real 3-server cluster and kills the
// leader: snapshot updates, registrations and rule changes continue through
// the new leader and the rule in force never lapses. Then a second server
// dies, leaving no quorum (no leader can be elected): watches with
// WithStale still serve the last state from the survivor, while the
// running watches keep what they had. A server coming back restores writes.
func TestIntegrationClusterLeaderLoss(t *testing.T) {
	cl := consultest.StartCluster(t, 3)
	client := cl.Agent().Client()
	log := zaptest.NewLogger(t)
	ctx := context.Background()
	keys := RuleKeys{Service: "shop-orders"}
	put := func(value string) {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: keys.Service, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	serve := func() (*httptest.Server, int) {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(srv.Close)
		return srv, srv.Listener.Addr().(*net.TCPAddr).Port
	}
	register := func(port int) *Registrar {
		t.Helper()
		r, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: port, Version: "1.0"}, WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}

	// Wait times far beyond the deadlines below: every change must wake a
	// blocked query.
	c := NewConsul(client, WithWaitTime(10*time.Minute), WithLogger(log))
	defer c.Close()
	w := c.Watch("orders")
	rules := NewConsulRules(client, keys, WithWaitTime(10*time.Minute), WithLogger(log))
	defer rules.Close()
	put("r1")
	_, port1 := serve()
	r1 := register(port1)
	waitFor(t, 30*time.Second, "the first instance", func() bool { return w.Snapshot().Len() == 1 })
	waitFor(t, 30*time.Second, "the rule", func() bool { return string(rules.Current().Data) == "r1" })

	// The rule stays in force throughout: every document published from
	// here on is recorded.
	var (
		mu   sync.Mutex
		seen []string
	)
	ruleCh, stopRules := rules.Subscribe()
	defer stopRules()
	done := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-ruleCh:
				d := rules.Current().Data
				mu.Lock()
				if d == nil {
					seen = append(seen, "<no rule>")
				} else {
					seen = append(seen, string(d))
				}
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()

	leader, err := cl.Leader()
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill(t)
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	next, err := cl.WaitLeader(lctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s killed; %s leads", leader.Node(), next.Node())

	// Registrations and snapshot updates go on through the new leader.
	srv2, port2 := serve()
	register(port2)
	waitFor(t, 30*time.Second, "the instance registered after the election", func() bool { return w.Snapshot().Len() == 2 })
	srv2.Close() // its check fails: the instance leaves
	waitFor(t, 30*time.Second, "the instance whose server closed to leave", func() bool { return w.Snapshot().Len() == 1 })
	if in := w.Snapshot().Instances[0]; in.ID != r1.ID() {
		t.Fatalf("instance left standing: %s, want %s", in.ID, r1.ID())
	}
	put("r2")
	waitFor(t, 30*time.Second, "the rule changed through the new leader", func() bool { return string(rules.Current().Data) == "r2" })

	// Before the quorum goes, let every live server apply the state (a
	// follower learns of commits with the leader's next heartbeat).
	for _, s := range cl.Servers() {
		if s == leader {
			continue
		}
		waitFor(t, 30*time.Second, "server "+s.Node()+" to apply the state", func() bool {
			q := &api.QueryOptions{AllowStale: true}
			p, _, err := s.Client().KV().Get(keys.Service, q)
			if err != nil || p == nil || string(p.Value) != "r2" {
				return false
			}
			e, _, err := s.Client().Health().Service("orders", "", true, q)
			return err == nil && len(e) == 1
		})
	}
	next.Kill(t)

	// One server of three: no leader. Stale watches started now are
	// served by the survivor.
	stale := NewConsul(client, WithStale(), WithWaitTime(10*time.Minute), WithLogger(log))
	defer stale.Close()
	sw := stale.Watch("orders")
	staleRules := NewConsulRules(client, keys, WithStale(), WithWaitTime(10*time.Minute), WithLogger(log))
	defer staleRules.Close()
	waitFor(t, 60*time.Second, "a stale watch served without a leader", func() bool {
		return isReady(sw.Ready()) && sw.Snapshot().Len() == 1
	})
	waitFor(t, 60*time.Second, "a stale rule watch served without a leader", func() bool {
		return isReady(staleRules.Ready()) && string(staleRules.Current().Data) == "r2"
	})
	if sw.Snapshot().Instances[0].ID != r1.ID() {
		t.Fatalf("stale snapshot %+v", sw.Snapshot().Instances)
	}
	if _, _, err := client.KV().Get(keys.Service, &api.QueryOptions{RequireConsistent: true}); err == nil {
		t.Fatal("a consistent read succeeded with one server of three: the test did not remove the quorum")
	}
	if w.Snapshot().Len() != 1 || string(rules.Current().Data) != "r2" {
		t.Fatalf("without a leader the running watches hold %d instances and rule %q", w.Snapshot().Len(), rules.Current().Data)
	}

	// A server back: writes go on, the running watches follow.
	leader.Restart(t)
	if _, err := cl.WaitLeader(lctx, nil); err != nil {
		t.Fatal(err)
	}
	put("r3")
	waitFor(t, 60*time.Second, "the rule changed after the quorum came back", func() bool { return string(rules.Current().Data) == "r3" })
	waitFor(t, 60*time.Second, "the stale rule watch following", func() bool { return string(staleRules.Current().Data) == "r3" })
	close(done)
	<-watching
	mu.Lock()
	defer mu.Unlock()
	for _, d := range seen {
		if d != "r2" && d != "r3" {
			t.Fatalf("rule documents published while the leader changed: %q, want only r2 then r3", seen)
		}
	}
}

func isReady(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
