package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/internal/orchestrate"
)

// ConsulStore is the Store of a rule key in Consul KV: the spec at
// orchestrate's spec key, the rule at the rule key, the state at
// StatePrefix + rule key, the lock at LockPrefix + rule key. Commits are
// Consul transactions with a check-and-set on each key's index, so a
// person's concurrent edit is never overwritten.
type ConsulStore struct {
	client  *api.Client
	ruleKey string
	name    string
	ttl     time.Duration

	mu      sync.Mutex
	session string // set while held
}

// NewConsulStore returns the Store of ruleKey on client. name is shown as
// the lock's holder; ttl is the lock session's TTL (Consul accepts 10s to
// 24h; 0: 15s): how long a controller that died keeps the lock.
func NewConsulStore(client *api.Client, ruleKey, name string, ttl time.Duration) (*ConsulStore, error) {
	if client == nil || ruleKey == "" {
		return nil, errors.New("rollout: NewConsulStore needs a client and a rule key")
	}
	if ttl == 0 {
		ttl = 15 * time.Second
	}
	if ttl < 10*time.Second || ttl > 24*time.Hour {
		return nil, fmt.Errorf("rollout: session TTL %v: Consul accepts 10s to 24h", ttl)
	}
	return &ConsulStore{client: client, ruleKey: ruleKey, name: name, ttl: ttl}, nil
}

// Read implements Store with consistent reads.
func (c *ConsulStore) Read(ctx context.Context) (*Snapshot, error) {
	kv := c.client.KV()
	q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	s := &Snapshot{}
	for _, k := range []string{orchestrate.SpecKey(c.ruleKey), c.ruleKey, StatePrefix + c.ruleKey} {
		p, _, err := kv.Get(k, q)
		if err != nil {
			return nil, fmt.Errorf("rollout: read %q: %w", k, err)
		}
		if p == nil {
			continue
		}
		switch k {
		case c.ruleKey:
			s.Rule, s.RuleIndex, s.RuleFlags = p.Value, p.ModifyIndex, p.Flags
		case StatePrefix + c.ruleKey:
			s.State, s.StateIndex = &State{}, p.ModifyIndex
			if err := json.Unmarshal(p.Value, s.State); err != nil {
				return nil, fmt.Errorf("rollout: state at %q: %w", k, err)
			}
		default:
			s.Spec, s.SpecIndex = p.Value, p.ModifyIndex
		}
	}
	return s, nil
}

// Commit implements Store.
func (c *ConsulStore) Commit(ctx context.Context, from *Snapshot, u Update) error {
	st, err := json.Marshal(u.State)
	if err != nil {
		return err
	}
	c.mu.Lock()
	sid := c.session
	c.mu.Unlock()
	var ops api.TxnOps
	if sid != "" {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: LockPrefix + c.ruleKey, Session: sid}})
	}
	if u.Spec != nil {
		ops = append(ops,
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: orchestrate.SpecKey(c.ruleKey), Value: u.Spec, Index: from.SpecIndex}},
			&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: c.ruleKey, Value: u.Rule, Flags: RenderedFlags, Index: from.RuleIndex}})
	} else {
		ops = append(ops, unchanged(orchestrate.SpecKey(c.ruleKey), from.SpecIndex), unchanged(c.ruleKey, from.RuleIndex))
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: StatePrefix + c.ruleKey, Value: st, Index: from.StateIndex}})
	ok, resp, _, err := c.client.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("rollout: write %q: %w", c.ruleKey, err)
	}
	if ok {
		return nil
	}
	for _, e := range resp.Errors {
		if sid != "" && e.OpIndex == 0 {
			return fmt.Errorf("%w: %s", ErrNotHeld, e.What)
		}
	}
	return ErrConflict
}

// Hold implements Store with a Consul session and lock, as graylane
// orchestrate holds its own: the session is renewed until release, then
// destroyed, which frees the lock at once; a controller that dies frees it
// when its session expires (one to two TTLs).
func (c *ConsulStore) Hold(ctx context.Context) (context.Context, func(), error) {
	sessions := c.client.Session()
	// No lock-delay: every commit checks the session in its transaction,
	// so a former holder cannot write, and any delay can refuse a standby
	// that reacts within it (consul/api's Lock then waits five seconds
	// before trying again). consul/api's Session.Create leaves a zero
	// LockDelay out, which Consul reads as its default (15s): the body is
	// written here.
	var created struct{ ID string }
	_, err := c.client.Raw().Write("/v1/session/create", map[string]any{
		"Name": "graylane rollout " + c.ruleKey + " " + c.name, "TTL": c.ttl.String(),
		"LockDelay": "0s", "Behavior": api.SessionBehaviorRelease,
	}, &created, (&api.WriteOptions{}).WithContext(ctx))
	sid := created.ID
	if err == nil && sid == "" {
		err = errors.New("no session ID in the answer")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: create session: %w", err)
	}
	renewDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = sessions.RenewPeriodic(c.ttl.String(), sid, nil, renewDone)
	}()
	stop := func() {
		close(renewDone)
		wg.Wait()
	}
	lock, err := c.client.LockOpts(&api.LockOptions{
		Key: LockPrefix + c.ruleKey, Value: []byte(c.name), Session: sid,
		LockWaitTime: 2 * time.Second, MonitorRetries: 3,
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	lost, err := lock.Lock(ctx.Done())
	if err != nil || lost == nil {
		stop()
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, err
	}
	c.mu.Lock()
	c.session = sid
	c.mu.Unlock()
	hctx, cancel := context.WithCancel(ctx)
	var wg2 sync.WaitGroup
	wg2.Add(1)
	go func() {
		defer wg2.Done()
		select {
		case <-lost:
			cancel()
		case <-hctx.Done():
		}
	}()
	release := func() {
		cancel()
		wg2.Wait()
		c.mu.Lock()
		c.session = ""
		c.mu.Unlock()
		_ = lock.Unlock()
		stop()
	}
	return hctx, release, nil
}

// unchanged is the transaction operation that checks key is still at index
// (0: still absent).
func unchanged(key string, index uint64) *api.TxnOp {
	if index == 0 {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}}
	}
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: index}}
}
