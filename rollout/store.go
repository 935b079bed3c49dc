package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/graylane/graylane/internal/orchestrate"
)

// Keys of a rollout in Consul KV, next to the rule key's spec
// (orchestrate's "graylane/spec/" + rule key).
const (
	// StatePrefix + rule key holds the rollout's State as JSON.
	StatePrefix = "graylane/rollout/"
	// LockPrefix + rule key is the lock the controllers of a rollout
	// compete for.
	LockPrefix = "graylane/rollout-lock/"
)

// SpecKey returns the KV key of the spec rendered into ruleKey, where
// graylane publish puts it and the controller edits it.
func SpecKey(ruleKey string) string { return orchestrate.SpecKey(ruleKey) }

// RenderedFlags are the KV flags of a rule key written from a spec; the
// controller writes its renderings with them, as graylane publish and
// graylane orchestrate do.
const RenderedFlags = orchestrate.RenderedFlags

// ErrConflict is returned by [Store.Commit] when a key moved since the
// snapshot it was given.
var ErrConflict = errors.New("rollout: changed since read")

// ErrNotHeld is returned by [Store.Commit] when the store was held
// ([Store.Hold]) and the lock has been lost since.
var ErrNotHeld = errors.New("rollout: lock no longer held")

// Snapshot is what a Store holds for one rule key: the spec, the rule and
// the rollout state, each with the index it was read at (0: absent).
type Snapshot struct {
	Spec       []byte
	SpecIndex  uint64
	Rule       []byte
	RuleIndex  uint64
	RuleFlags  uint64
	State      *State
	StateIndex uint64
}

// Update is a write: the spec and its rendering (both or neither) and the
// state.
type Update struct {
	Spec, Rule []byte // nil: unchanged
	State      *State
}

// Store is where a rollout reads and writes the spec, the rule and its
// state: Consul KV ([NewConsulStore]) or memory ([NewMemStore]).
type Store interface {
	// Read returns the current snapshot.
	Read(ctx context.Context) (*Snapshot, error)
	// Commit writes u in one transaction if the spec, rule and state keys
	// are still at from's indices, else fails with ErrConflict; a held
	// store also checks that it still holds the lock (ErrNotHeld).
	Commit(ctx context.Context, from *Snapshot, u Update) error
	// Hold blocks until the caller is the rollout's one active controller
	// and returns a context that ends when it stops being so, and the
	// function that gives the lock up.
	Hold(ctx context.Context) (context.Context, func(), error)
}

// MemStore is a Store in memory, for demos and tests; Hold is immediate
// (one process, one controller).
type MemStore struct {
	mu    sync.Mutex
	index uint64
	spec  entry
	rule  entry
	state entry
}

type entry struct {
	v     []byte
	index uint64
	flags uint64
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

// Publish writes spec and its rendering, as graylane publish does (or a
// person's edit: spec nil writes the rule alone with flags).
func (m *MemStore) Publish(spec, rendered []byte, flags uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.index++
	if spec != nil {
		m.spec = entry{spec, m.index, 0}
	}
	if rendered != nil {
		m.rule = entry{rendered, m.index, flags}
	}
}

// Read implements Store.
func (m *MemStore) Read(context.Context) (*Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &Snapshot{Spec: m.spec.v, SpecIndex: m.spec.index, Rule: m.rule.v, RuleIndex: m.rule.index,
		RuleFlags: m.rule.flags, StateIndex: m.state.index}
	if m.state.v != nil {
		s.State = &State{}
		if err := json.Unmarshal(m.state.v, s.State); err != nil {
			return nil, fmt.Errorf("rollout: state: %w", err)
		}
	}
	return s, nil
}

// Commit implements Store.
func (m *MemStore) Commit(_ context.Context, from *Snapshot, u Update) error {
	st, err := json.Marshal(u.State)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.spec.index != from.SpecIndex || m.rule.index != from.RuleIndex || m.state.index != from.StateIndex {
		return ErrConflict
	}
	m.index++
	if u.Spec != nil {
		m.spec = entry{u.Spec, m.index, 0}
		m.rule = entry{u.Rule, m.index, RenderedFlags}
	}
	m.state = entry{st, m.index, 0}
	return nil
}

// Hold implements Store: the lock is always free.
func (m *MemStore) Hold(ctx context.Context) (context.Context, func(), error) {
	c, cancel := context.WithCancel(ctx)
	return c, cancel, nil
}
