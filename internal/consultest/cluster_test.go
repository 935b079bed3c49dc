package consultest

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestCluster proves the cluster helper: three servers and a client agent
// elect a leader; killing it elects another through which writes go on;
// with two of three servers gone there is no quorum, yet stale reads are
// served; a killed server restarted on its ports and data brings the
// quorum back.
func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	kv := c.Agent().Client().KV()
	if n := len(c.Servers()); n != 3 {
		t.Fatalf("%d servers", n)
	}
	peers, err := c.Agent().Client().Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("raft peers %v, %v; want 3", peers, err)
	}
	first, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}

	first.Kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second, err := c.WaitLeader(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("2")}, nil); err != nil {
		t.Fatalf("write through the new leader: %v", err)
	}

	// A stale read may lag the leader (a follower learns of a commit with
	// the next heartbeat): wait until every live server has applied it.
	for _, s := range c.Servers() {
		if s == first {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, _, err := s.Client().KV().Get("k", &api.QueryOptions{AllowStale: true})
			if err == nil && p != nil && string(p.Value) == "2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s never applied the write: %v, %v", s.Node(), p, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	second.Kill(t)
	// One server of three: no leader can be elected. Consistent reads
	// fail; stale reads are served by the survivor.
	var stale *api.KVPair
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, _, err := kv.Get("k", &api.QueryOptions{AllowStale: true})
		if err == nil && p != nil {
			stale = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stale read without quorum: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(stale.Value) != "2" {
		t.Fatalf("stale read %q, want 2", stale.Value)
	}
	if _, _, err := kv.Get("k", &api.QueryOptions{RequireConsistent: true}); err == nil {
		t.Fatal("a consistent read succeeded without quorum")
	}

	first.Restart(t)
	if _, err := c.WaitLeader(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, err := kv.Get("k", &api.QueryOptions{RequireConsistent: true}); err != nil || p == nil || string(p.Value) != "2" {
		t.Fatalf("consistent read after the quorum came back: %v, %v", p, err)
	}
}
