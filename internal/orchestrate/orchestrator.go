package orchestrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/lease"
	"github.com/graylane/graylane/rule"
)

// Defaults of an Orchestrator.
const (
	// DefaultSessionTTL is the TTL of the session an Orchestrator holds the
	// lock with, a backstop behind its health check (see DefaultCheckTTL):
	// Consul invalidates a session between one and two TTLs after its last
	// renewal. Consul accepts 10s to 24h.
	DefaultSessionTTL = lease.DefaultSessionTTL
	// DefaultCheckTTL is the TTL of the health check an Orchestrator
	// registers and feeds, and ties its session to: how long a dead
	// orchestrator keeps the lock.
	DefaultCheckTTL = lease.DefaultCheckTTL
	// ServiceName is the service each Orchestrator registers on its agent,
	// with one instance per Orchestrator carrying the check its session
	// depends on.
	ServiceName = "graylane-orchestrate"
	// DefaultExpansionHold is how long a version absent from the catalog
	// stays in the rendering; the balancer's default.
	DefaultExpansionHold = 30 * time.Second
)

// maxAttempts bounds the read-render-write rounds of one change; a round
// is repeated only when someone else wrote the spec or the rule meanwhile.
const maxAttempts = 8

// Option configures an Orchestrator.
type Option func(*options)

type options struct {
	log      *zap.Logger
	reg      discovery.Registry
	regOpts  []discovery.Option
	hold     time.Duration
	ttl      time.Duration
	checkTTL time.Duration
	name     string
	now      func() time.Time
	after    func(time.Duration, func()) func() bool
	beforeTx func() // test hook: called before each write transaction
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithRegistry sets where the instances come from (default: a
// discovery.NewConsul on the Orchestrator's client, started while the
// Orchestrator is active and closed when it steps down). A registry given
// here is not closed.
func WithRegistry(r discovery.Registry) Option { return func(o *options) { o.reg = r } }

// WithDiscoveryOptions passes options to the default registry.
func WithDiscoveryOptions(opts ...discovery.Option) Option {
	return func(o *options) { o.regOpts = append(o.regOpts, opts...) }
}

// WithExpansionHold sets how long a version absent from the catalog stays
// in the rendering (default DefaultExpansionHold; < 0: it leaves at once).
func WithExpansionHold(d time.Duration) Option { return func(o *options) { o.hold = d } }

// WithSessionTTL sets the TTL of the lock session (default
// DefaultSessionTTL; 10s to 24h).
func WithSessionTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithCheckTTL sets the TTL of the health check the lock session depends
// on (default DefaultCheckTTL; at least one second, at most the session
// TTL): a dead Orchestrator keeps the lock this long. The Orchestrator
// feeds the check every third of it, so a process paused (or an agent
// unreachable) for longer loses the lock.
func WithCheckTTL(d time.Duration) Option { return func(o *options) { o.checkTTL = d } }

// WithName sets the name the Orchestrator gives its session and writes as
// the lock's value, shown by Consul (default: host name and process id).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// withClock replaces the clock of the expansion hold (tests).
func withClock(now func() time.Time, after func(time.Duration, func()) func() bool) Option {
	return func(o *options) { o.now, o.after = now, after }
}

// Orchestrator keeps one rule key rendered from its spec while it holds the
// key's lock. See the package documentation.
type Orchestrator struct {
	client  *api.Client
	ruleKey string
	o       options
	log     *zap.Logger
	// lock is the lock at LockKey, held with an instance of ServiceName
	lock *lease.Lock
	// the instance of ServiceName this Orchestrator registers, and its
	// check, unique per Orchestrator (the lock's)
	serviceID, checkID string

	leading   atomic.Bool
	writes    atomic.Int64 // renderings written
	conflicts atomic.Int64 // write transactions refused by a concurrent write
	kept      atomic.Int64 // renderings not written over a rule written by hand
	// held is what the last rendering held per service (versions missing
	// from the catalog, kept for the hold); nil before the first.
	held atomic.Pointer[map[string][]string]
}

// New returns an Orchestrator of ruleKey (the key Java and Go hops read:
// Nepxion's "<group>-<service>" or "<group>-<group>") on client. Run
// starts it.
func New(client *api.Client, ruleKey string, opts ...Option) (*Orchestrator, error) {
	if client == nil {
		return nil, errors.New("orchestrate: nil Consul client")
	}
	if ruleKey == "" {
		return nil, errors.New("orchestrate: empty rule key")
	}
	o := options{hold: DefaultExpansionHold, ttl: DefaultSessionTTL, checkTTL: DefaultCheckTTL, now: time.Now,
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }}
	for _, opt := range opts {
		opt(&o)
	}
	if o.hold == 0 {
		o.hold = DefaultExpansionHold
	}
	if o.name == "" {
		host, _ := os.Hostname()
		o.name = host + ":" + strconv.Itoa(os.Getpid())
	}
	log := o.log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("rule_key", ruleKey))
	lock, err := lease.New(client, ServiceName, LockKey(ruleKey), lease.WithName(o.name),
		lease.WithMeta(map[string]string{"rule_key": ruleKey, "name": o.name}),
		lease.WithCheckTTL(o.checkTTL), lease.WithSessionTTL(o.ttl), lease.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("orchestrate: %w", err)
	}
	return &Orchestrator{client: client, ruleKey: ruleKey, o: o, log: log, lock: lock,
		serviceID: lock.ServiceID(), checkID: lock.CheckID()}, nil
}

// Leading reports whether the Orchestrator holds the lock now.
func (o *Orchestrator) Leading() bool { return o.leading.Load() }

// Run competes for the lock and, while it holds it, keeps the rule
// rendered; it returns when ctx ends, after releasing the lock and
// deregistering its instance of ServiceName. Errors talking to Consul are
// logged and retried with a backoff. Run once.
func (o *Orchestrator) Run(ctx context.Context) error {
	var failures int
	for ctx.Err() == nil {
		err := o.term(ctx)
		if err == nil || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		wait := lease.Backoff(failures)
		o.log.Warn("orchestrate: lock attempt failed; trying again", zap.Duration("in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// term holds the lock (see package lease: an instance of ServiceName with
// a check the session is tied to) and, once it holds it, leads until ctx
// ends or the lock is lost; it releases the lock, and deregisters the
// instance, before it returns.
func (o *Orchestrator) term(ctx context.Context) error {
	t, err := o.lock.Hold(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer t.Release()
	o.leading.Store(true)
	defer o.leading.Store(false)
	o.log.Info("orchestrate: holding the lock; rendering", zap.String("lock", LockKey(o.ruleKey)), zap.String("session", t.Session()))
	o.lead(t.Context(), t.Session())
	if ctx.Err() == nil {
		o.log.Warn("orchestrate: lock lost; standing by", zap.String("session", t.Session()))
	}
	return nil
}

// leader is the state of one term holding the lock, used by the lead
// goroutine only (forwarders and timers only send on notify).
type leader struct {
	o      *Orchestrator
	sid    string
	reg    discovery.Registry
	notify chan struct{}
	hold   rule.Hold

	spec      *rule.Spec
	specIndex uint64
	seeded    bool
	watched   map[string]bool
	wg        sync.WaitGroup
	stopTimer func() bool
	// what was last logged, to say things once per change
	lastWarn string
}

// lead renders until ctx ends.
func (o *Orchestrator) lead(ctx context.Context, sid string) {
	l := &leader{o: o, sid: sid, reg: o.o.reg, notify: make(chan struct{}, 1),
		hold: rule.Hold{D: o.o.hold}, watched: make(map[string]bool)}
	if l.reg == nil {
		opts := append([]discovery.Option{discovery.WithLogger(o.log)}, o.o.regOpts...)
		reg := discovery.NewConsul(o.client, opts...)
		defer reg.Close()
		l.reg = reg
	}
	specs := discovery.NewConsulRules(o.client, discovery.RuleKeys{Service: SpecKey(o.ruleKey)}, discovery.WithLogger(o.log))
	defer specs.Close()
	changed, unsubscribe := specs.Subscribe()
	defer unsubscribe()
	// The rule key is watched too: a hand edit is reported when it happens,
	// a deleted rendering is written again at once.
	rules := discovery.NewConsulRules(o.client, discovery.RuleKeys{Service: o.ruleKey}, discovery.WithLogger(o.log))
	defer rules.Close()
	edited, unsubscribeRules := rules.Subscribe()
	defer unsubscribeRules()
	fctx, stopForwarders := context.WithCancel(ctx)
	defer func() {
		stopForwarders()
		l.wg.Wait()
		if l.stopTimer != nil {
			l.stopTimer()
		}
	}()
	var retry <-chan time.Time
	var failures int
	step := func() {
		if err := l.sync(fctx); err != nil {
			if fctx.Err() != nil {
				return // stopping, or the lock is lost
			}
			failures++
			wait := min(time.Duration(failures)*500*time.Millisecond, 10*time.Second)
			o.log.Warn("orchestrate: rendering failed; trying again", zap.Duration("in", wait), zap.Error(err))
			retry = time.After(wait)
			return
		}
		failures, retry = 0, nil
	}
	select {
	case <-specs.Ready():
	case <-ctx.Done():
		return
	}
	step()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-edited:
		case <-l.notify:
		case <-retry:
		}
		step()
	}
}

// wake asks the lead loop to render again; never blocks.
func (l *leader) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// follow starts forwarding the changes of service's instances, once its
// watch has answered, to the lead loop.
func (l *leader) follow(ctx context.Context, service string) {
	if l.watched[service] {
		return
	}
	l.watched[service] = true
	w := l.reg.Watch(service)
	ch, unsubscribe := w.Subscribe()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer unsubscribe()
		select {
		case <-w.Ready():
			l.wake()
		case <-ctx.Done():
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				l.wake()
			}
		}
	}()
}

// warnOnce logs msg at warn level unless it was the last thing warned.
func (l *leader) warnOnce(key, msg string, fields ...zap.Field) {
	if l.lastWarn == key {
		return
	}
	l.lastWarn = key
	l.o.log.Warn(msg, fields...)
}

// sync reads the spec and the rule, renders, and writes the rendering when
// it differs, until a write succeeds or there is nothing to write. It
// returns an error only for failures worth retrying (Consul unreachable,
// too many concurrent writes).
func (l *leader) sync(ctx context.Context) error {
	o := l.o
	kv := o.client.KV()
	q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	specKey := SpecKey(o.ruleKey)
	for range maxAttempts {
		specPair, _, err := kv.Get(specKey, q)
		if err != nil {
			return fmt.Errorf("read %q: %w", specKey, err)
		}
		if specPair == nil {
			l.warnOnce("nospec", "orchestrate: no spec published; the rule key is left as it is", zap.String("spec_key", specKey))
			return nil
		}
		if l.spec == nil || specPair.ModifyIndex != l.specIndex {
			spec, err := rule.ParseSpec(specPair.Value)
			if err != nil {
				l.warnOnce("badspec "+strconv.FormatUint(specPair.ModifyIndex, 10),
					"orchestrate: the spec is invalid; the rule key is left as it is",
					zap.String("spec_key", specKey), zap.Uint64("index", specPair.ModifyIndex), zap.Error(err))
				return nil
			}
			l.spec, l.specIndex = spec, specPair.ModifyIndex
			l.hold.Retain(spec.Service)
		}
		for _, name := range l.spec.Service {
			l.follow(ctx, name)
		}
		rulePair, _, err := kv.Get(o.ruleKey, q)
		if err != nil {
			return fmt.Errorf("read %q: %w", o.ruleKey, err)
		}
		if !l.seeded {
			l.seed(rulePair)
		}
		rd, held, ok := l.render()
		if !ok {
			return nil
		}
		o.held.Store(&held)
		if rulePair != nil && bytes.Equal(rulePair.Value, rd.XML) && rulePair.Flags == RenderedFlags {
			return nil // up to date
		}
		if rulePair != nil && rulePair.Flags != RenderedFlags && rulePair.ModifyIndex > specPair.ModifyIndex {
			o.kept.Add(1)
			l.warnOnce("edited "+strconv.FormatUint(rulePair.ModifyIndex, 10),
				"orchestrate: the rule key was written by hand after the spec was published; it is left as it is until the spec is published again",
				zap.Uint64("rule_index", rulePair.ModifyIndex), zap.Uint64("spec_index", specPair.ModifyIndex))
			return nil
		}
		var ruleIndex uint64 // 0: the key must not exist
		if rulePair != nil {
			ruleIndex = rulePair.ModifyIndex
		}
		if o.o.beforeTx != nil {
			o.o.beforeTx()
		}
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: LockKey(o.ruleKey), Session: l.sid}},
			{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: specKey, Index: specPair.ModifyIndex}},
			{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: o.ruleKey, Value: rd.XML, Flags: RenderedFlags, Index: ruleIndex}},
		}
		done, resp, _, err := o.client.Txn().Txn(ops, q)
		if err != nil {
			return fmt.Errorf("write %q: %w", o.ruleKey, err)
		}
		if done {
			o.writes.Add(1)
			l.lastWarn = ""
			o.log.Info("orchestrate: rule rendered", zap.Uint64("spec_index", specPair.ModifyIndex),
				zap.Any("held", held), zap.Strings("pending", rd.Pending), zap.ByteString("rule", rd.XML))
			return nil
		}
		for _, e := range resp.Errors {
			if e.OpIndex == 0 {
				// The lock is gone: the lost channel ends the term.
				o.log.Warn("orchestrate: lock no longer held; rendering not written", zap.String("why", e.What))
				return nil
			}
		}
		o.conflicts.Add(1)
		o.log.Info("orchestrate: the spec or the rule changed while rendering; reading both again", zap.String("why", txnErrors(resp)))
	}
	return fmt.Errorf("%d concurrent writes in a row", maxAttempts)
}

// seed starts the hold with the versions the current rendering names, so
// that a term that begins while versions are briefly missing keeps them.
func (l *leader) seed(pair *api.KVPair) {
	l.seeded = true
	if pair == nil || pair.Flags != RenderedFlags {
		return
	}
	r, err := rule.Parse(pair.Value)
	if err != nil {
		return
	}
	now := l.o.o.now()
	for _, name := range l.spec.Service {
		l.hold.Seed(name, namedVersions(r, name), now)
	}
}

// render expands the spec against the catalog and the hold. ok is false
// when there is nothing to write: a watch has not answered yet, or the spec
// cannot be rendered (logged).
func (l *leader) render() (*Rendering, map[string][]string, bool) {
	now := l.o.o.now()
	inv := make(rule.Inventory, len(l.spec.Service))
	var held map[string][]string
	var wake time.Time
	for _, name := range l.spec.Service {
		w := l.reg.Watch(name)
		select {
		case <-w.Ready():
		default:
			return nil, nil, false // its forwarder wakes us once it answers
		}
		snap := w.Snapshot()
		list := make([]rule.Instance, len(snap.Instances))
		for i := range snap.Instances {
			list[i] = rule.Instance{Version: snap.Instances[i].Version, Started: snap.Instances[i].Started}
		}
		list, h, end := l.hold.Apply(name, list, now)
		if len(h) > 0 {
			if held == nil {
				held = make(map[string][]string)
			}
			held[name] = h
		}
		if !end.IsZero() && (wake.IsZero() || end.Before(wake)) {
			wake = end
		}
		inv[name] = list
	}
	if l.stopTimer != nil {
		l.stopTimer()
		l.stopTimer = nil
	}
	if !wake.IsZero() {
		// Render again when the first held version's hold ends, even if
		// the catalog stays quiet.
		l.stopTimer = l.o.o.after(wake.Sub(now), l.wake)
	}
	rd, err := Render(l.spec, inv)
	if err != nil {
		msg := "orchestrate: the spec cannot be rendered; the rule key is left as it is"
		if errors.Is(err, rule.ErrNoInstances) {
			msg = "orchestrate: no service of the spec has instances; the rule key is left as it is"
		}
		l.warnOnce("render "+err.Error(), msg, zap.Error(err))
		return nil, nil, false
	}
	if len(rd.Pending) > 0 {
		l.warnOnce("pending "+fmt.Sprint(rd.Pending), "orchestrate: rendered without services that have no instances; they are unconstrained until they appear",
			zap.Strings("services", rd.Pending))
	}
	return rd, held, true
}
