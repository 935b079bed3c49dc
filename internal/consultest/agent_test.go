package consultest

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAgentSmoke proves the helper against the real agent: a service with
// tags and meta registered and read back through the health endpoint, and a
// KV key written, watched with a blocking query that wakes on change, and
// deleted.
func TestAgentSmoke(t *testing.T) {
	a := Start(t)
	c := a.Client()

	reg := &api.AgentServiceRegistration{
		ID:      "svc-a-1",
		Name:    "svc-a",
		Address: "127.0.0.1",
		Port:    18080,
		Tags:    []string{"version=1.1", "region=dc1"},
		Meta:    map[string]string{"zone": "z1"},
		Check:   &api.AgentServiceCheck{TTL: "30s", Status: api.HealthPassing},
	}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	var entries []*api.ServiceEntry
	deadline := time.Now().Add(10 * time.Second)
	for len(entries) == 0 && time.Now().Before(deadline) {
		var err error
		entries, _, err = c.Health().Service("svc-a", "", true, nil)
		if err != nil {
			t.Fatalf("health: %v", err)
		}
		if len(entries) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(entries) != 1 {
		t.Fatalf("health entries = %d, want 1", len(entries))
	}
	s := entries[0].Service
	if s.ID != "svc-a-1" || s.Port != 18080 || s.Meta["zone"] != "z1" || len(s.Tags) != 2 || s.Tags[0] != "version=1.1" {
		t.Fatalf("service read back = %+v", s)
	}

	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "graylane/smoke", Value: []byte("one")}, nil); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	p, meta, err := kv.Get("graylane/smoke", nil)
	if err != nil || p == nil || string(p.Value) != "one" {
		t.Fatalf("kv get = %v, %v", p, err)
	}

	// A blocking get on the current index must wait, then wake on a change.
	type result struct {
		value string
		err   error
	}
	woke := make(chan result, 1)
	go func() {
		p, _, err := kv.Get("graylane/smoke", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil || p == nil {
			woke <- result{err: err}
			return
		}
		woke <- result{value: string(p.Value)}
	}()
	select {
	case r := <-woke:
		t.Fatalf("blocking get returned before any change: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := kv.Put(&api.KVPair{Key: "graylane/smoke", Value: []byte("two")}, nil); err != nil {
		t.Fatalf("kv update: %v", err)
	}
	select {
	case r := <-woke:
		if r.err != nil || r.value != "two" {
			t.Fatalf("blocking get woke with %+v, want two", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking get did not wake on change")
	}

	if _, err := kv.Delete("graylane/smoke", nil); err != nil {
		t.Fatalf("kv delete: %v", err)
	}
	if p, _, err := kv.Get("graylane/smoke", nil); err != nil || p != nil {
		t.Fatalf("after delete: %v, %v", p, err)
	}
}

// TestAgentRestart proves that an agent comes back on the same address.
func TestAgentRestart(t *testing.T) {
	a := Start(t)
	addr := a.HTTPAddr()
	a.Stop(t)
	if _, err := a.Client().Status().Leader(); err == nil {
		t.Fatal("agent still answers after Stop")
	}
	a.Restart(t)
	if a.HTTPAddr() != addr {
		t.Fatalf("restarted on %s, want %s", a.HTTPAddr(), addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client().KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
}
