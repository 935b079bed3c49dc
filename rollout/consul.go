package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/graylane/graylane/internal/lease"
	"github.com/graylane/graylane/internal/orchestrate"
)

// ServiceName is the service a ConsulStore registers on its agent while
// it holds or waits for the lock: one instance per controller, with the
// meta rule_key and name, carrying the TTL check its lock session is tied
// to. A stopped controller deregisters its instance; a dead one's is
// removed by its agent a minute after its check went critical.
const ServiceName = "graylane-rollout"

// ConsulStore is the Store of a rule key in Consul KV: the spec at
// orchestrate's spec key, the rule at the rule key, the state at
// StatePrefix + rule key, the lock at LockPrefix + rule key. Commits are
// Consul transactions with a check-and-set on each key's index, so a
// person's concurrent edit is never overwritten.
type ConsulStore struct {
	client  *api.Client
	ruleKey string
	lock    *lease.Lock

	mu      sync.Mutex
	session string // set while held
}

// ConsulOption configures a ConsulStore.
type ConsulOption func(*consulOptions)

type consulOptions struct {
	checkTTL time.Duration
	log      *zap.Logger
}

// WithCheckTTL sets the TTL of the health check the lock session is tied
// to (default 3s; at least 1s and at most the session TTL): a controller
// that dies or stalls keeps the lock this long. The store feeds the check
// every third of it while it holds or waits for the lock.
func WithCheckTTL(d time.Duration) ConsulOption {
	return func(o *consulOptions) { o.checkTTL = d }
}

// WithLockLogger sets where the store logs the failures of its lock that
// Hold does not return: feeding the check, renewing the session,
// releasing (default: nowhere).
func WithLockLogger(l *zap.Logger) ConsulOption {
	return func(o *consulOptions) { o.log = l }
}

// NewConsulStore returns the Store of ruleKey on client. name is shown as
// the lock's holder; ttl is the lock session's TTL (Consul accepts 10s to
// 24h; 0: 15s), a backstop: a controller that dies loses the lock when its
// health check goes critical ([WithCheckTTL], 3s by default), and at the
// latest one to two session TTLs after its last renewal.
func NewConsulStore(client *api.Client, ruleKey, name string, ttl time.Duration, opts ...ConsulOption) (*ConsulStore, error) {
	if client == nil || ruleKey == "" {
		return nil, errors.New("rollout: NewConsulStore needs a client and a rule key")
	}
	if ttl == 0 {
		ttl = lease.DefaultSessionTTL
	}
	o := consulOptions{checkTTL: lease.DefaultCheckTTL}
	for _, opt := range opts {
		opt(&o)
	}
	lopts := []lease.Option{
		lease.WithMeta(map[string]string{"rule_key": ruleKey, "name": name}),
		lease.WithSessionTTL(ttl), lease.WithCheckTTL(o.checkTTL), lease.WithLogger(o.log),
	}
	if name != "" {
		lopts = append(lopts, lease.WithName(name))
	}
	lock, err := lease.New(client, ServiceName, LockPrefix+ruleKey, lopts...)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	return &ConsulStore{client: client, ruleKey: ruleKey, lock: lock}, nil
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

// Hold implements Store with a Consul lock held as graylane orchestrate
// holds its own: it registers an instance of ServiceName with a TTL check
// that it feeds, and holds the lock with a session tied to that check (and
// to the node's serfHealth), without lock-delay: every commit checks the
// session in its transaction, so a former holder cannot write. The
// release destroys the session, which frees the lock at once, and
// deregisters the instance; a controller that dies frees it as soon as its
// check goes critical (WithCheckTTL), the session TTL being a backstop.
func (c *ConsulStore) Hold(ctx context.Context) (context.Context, func(), error) {
	t, err := c.lock.Hold(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("rollout: %w", err)
	}
	c.mu.Lock()
	c.session = t.Session()
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		c.session = ""
		c.mu.Unlock()
		t.Release()
	}
	return t.Context(), release, nil
}

// unchanged is the transaction operation that checks key is still at index
// (0: still absent).
func unchanged(key string, index uint64) *api.TxnOp {
	if index == 0 {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}}
	}
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: index}}
}
