package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// Defaults of a Lock.
const (
	// DefaultCheckTTL is the TTL of the health check a Lock registers,
	// feeds and ties its session to: how long a dead holder keeps the
	// lock.
	DefaultCheckTTL = 3 * time.Second
	// DefaultSessionTTL is the TTL of the session, a backstop behind the
	// check: Consul invalidates an unrenewed session between one and two
	// TTLs after its last renewal.
	DefaultSessionTTL = 15 * time.Second
)

// Bounds of the TTLs.
const (
	// minCheckTTL: the check is fed every third of its TTL; below a
	// second, a busy machine's scheduling delays alone would let it go
	// critical.
	minCheckTTL = time.Second
	// Consul's bounds of a session TTL.
	minSessionTTL = 10 * time.Second
	maxSessionTTL = 24 * time.Hour
)

// lockWait bounds each blocking read of the lock key while waiting for
// it: the longest Hold takes to return after its context ends.
const lockWait = 2 * time.Second

// releaseTimeout bounds what Release (and Hold's cleanup after a
// failure) asks of the agent: releasing the lock, destroying the session
// and deregistering the instance, together. An agent that accepts
// connections but never answers (its process frozen, its packets dropped)
// would otherwise hang Release, and so the shutdown of its program. What
// is not done in time is done by Consul: the session ends when its check
// goes critical, freeing the lock, and the instance is removed a minute
// later.
const releaseTimeout = 5 * time.Second

// monitorRetries: a holder rides out a short agent outage (3 failed reads
// of the lock key in a row, 2s apart) rather than handing over; its writes
// check the session anyway.
const monitorRetries = 3

// lockDelay is the lock-delay of the sessions: none (see the package
// documentation). consul/api's Session.Create leaves a zero LockDelay out,
// which Consul reads as its default (15s), so the session is created with
// a body written here.
const lockDelay = "0s"

// serfHealth is the agent's own node check: a session tied to checks
// names it explicitly, so that the session also ends when its node leaves
// or fails.
const serfHealth = "serfHealth"

// deregisterAfter is how long the instance of a dead holder stays in the
// catalog, critical, before its agent removes it (Consul's minimum).
const deregisterAfter = time.Minute

// Option configures a Lock.
type Option func(*options)

type options struct {
	name       string
	meta       map[string]string
	log        *zap.Logger
	checkTTL   time.Duration
	sessionTTL time.Duration
}

// WithName sets the holder's name: the lock's value, and part of the
// session's and the check's names, shown by Consul (default: host name and
// process id).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithMeta sets the meta of the registered instance (default: none); the
// map is copied.
func WithMeta(meta map[string]string) Option {
	return func(o *options) { o.meta = maps.Clone(meta) }
}

// WithLogger sets where failures that Hold does not return are logged:
// feeding the check, renewing the session, releasing, deregistering
// (default: nowhere).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithCheckTTL sets the TTL of the health check the session depends on
// (default DefaultCheckTTL; at least 1s and at most the session TTL): a
// dead holder keeps the lock this long. The check is fed every third of
// it, so a holder paused (or an agent unreachable) for longer loses the
// lock.
func WithCheckTTL(d time.Duration) Option { return func(o *options) { o.checkTTL = d } }

// WithSessionTTL sets the TTL of the session (default DefaultSessionTTL;
// Consul accepts 10s to 24h), the backstop behind the check.
func WithSessionTTL(d time.Duration) Option { return func(o *options) { o.sessionTTL = d } }

// Lock is a Consul lock at one key, held through [Lock.Hold] with a
// session tied to a health check of an instance the Lock registers. A Lock
// has one instance ID for its life; it holds one term at a time, and may
// hold again once a term is released. Its methods are safe for concurrent
// use.
type Lock struct {
	client    *api.Client
	service   string
	key       string
	o         options
	log       *zap.Logger
	serviceID string
	checkID   string
	// busy is set from Hold to Release: one term at a time, since every
	// term registers the same instance.
	busy atomic.Bool
}

// New returns the Lock at key on client, held with instances of service.
// Its errors say what is wrong without naming the package; callers add
// their own prefix.
func New(client *api.Client, service, key string, opts ...Option) (*Lock, error) {
	if client == nil {
		return nil, errors.New("nil Consul client")
	}
	if service == "" {
		return nil, errors.New("empty service name")
	}
	if key == "" {
		return nil, errors.New("empty lock key")
	}
	o := options{checkTTL: DefaultCheckTTL, sessionTTL: DefaultSessionTTL}
	for _, opt := range opts {
		opt(&o)
	}
	if o.sessionTTL < minSessionTTL || o.sessionTTL > maxSessionTTL {
		return nil, fmt.Errorf("session TTL %v: Consul accepts %v to %v", o.sessionTTL, minSessionTTL, maxSessionTTL)
	}
	if o.checkTTL < minCheckTTL || o.checkTTL > o.sessionTTL {
		return nil, fmt.Errorf("check TTL %v: want at least 1s and at most the session TTL (%v)", o.checkTTL, o.sessionTTL)
	}
	if o.name == "" {
		host, _ := os.Hostname()
		o.name = host + ":" + strconv.Itoa(os.Getpid())
	}
	log := o.log
	if log == nil {
		log = zap.NewNop()
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	sid := service + "-" + hex.EncodeToString(id[:])
	return &Lock{
		client: client, service: service, key: key, o: o,
		log:       log.With(zap.String("lock", key), zap.String("service_id", sid)),
		serviceID: sid, checkID: sid + ":alive",
	}, nil
}

// ServiceID returns the ID of the instance the Lock registers.
func (l *Lock) ServiceID() string { return l.serviceID }

// CheckID returns the ID of the instance's TTL check, the one the session
// is tied to.
func (l *Lock) CheckID() string { return l.checkID }

// Term is one holding of a Lock, from [Lock.Hold] to [Term.Release].
type Term struct {
	l       *Lock
	ctx     context.Context
	cancel  context.CancelFunc
	session string
	lost    <-chan struct{}
	// stopFeed stops the feeding and the renewal (which then destroys the
	// session, until its context ends) and waits for both goroutines to
	// end.
	stopFeed func(context.Context)
	// watched closes when the goroutine that ends ctx on lost has ended.
	watched chan struct{}
	once    sync.Once
}

// Context returns a context that ends when the lock is lost, when the
// context given to Hold ends, or at Release.
func (t *Term) Context() context.Context { return t.ctx }

// Session returns the ID of the session that holds the lock, for writes
// that check it (Consul's check-session transaction operation on the lock
// key): a former holder's such writes fail.
func (t *Term) Session() string { return t.session }

// Release gives the lock up: it unlocks, destroys the session, stops
// feeding the check and deregisters the instance, all within a few
// seconds (releaseTimeout, 5s) even if the agent does not answer, and
// returns once every goroutine of the term has ended, but for consul/api's
// monitor of the lock when the agent did not answer in time: that one ends
// when its request to the agent fails or is answered (so the client's
// transport should have a response timeout). Failures are logged: a lock
// not released is freed when the session ends, an instance not
// deregistered is removed by its agent a minute after its check went
// critical. Release may be called more than once.
func (t *Term) Release() {
	t.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		t.cancel()
		<-t.watched
		// What consul/api's Unlock does, with a context: it has none.
		w := (&api.WriteOptions{}).WithContext(ctx)
		ent := &api.KVPair{Key: t.l.key, Value: []byte(t.l.o.name), Session: t.session, Flags: api.LockFlagValue}
		if _, _, err := t.l.client.KV().Release(ent, w); err != nil {
			t.l.log.Warn("lease: releasing the lock failed; it is freed when the session ends", zap.String("session", t.session), zap.Error(err))
		}
		t.stopFeed(ctx)
		// consul/api's monitor of the lock ends once the key no longer
		// names the session: unlocked, or freed with the session.
		select {
		case <-t.lost:
		case <-ctx.Done():
			t.l.log.Warn("lease: the agent did not answer within "+releaseTimeout.String()+"; the lock is freed when the session ends", zap.String("session", t.session))
		}
		t.l.deregister(ctx)
		t.l.busy.Store(false)
	})
}

// Hold registers the Lock's instance, creates its session and waits for
// the lock. It returns the Term once the lock is held, or ctx's error if
// ctx ends first, or what failed: "register <service>: …",
// "create session: …", "lock <key>: …". Whatever it returns, nothing of
// an unheld term is left behind (the instance is deregistered, the session
// destroyed). Call it again only after the previous Term's Release.
func (l *Lock) Hold(ctx context.Context) (*Term, error) {
	if !l.busy.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("lock %s: already held or being waited for by this Lock", l.key)
	}
	t, err := l.hold(ctx)
	if err != nil {
		l.busy.Store(false)
	}
	return t, err
}

func (l *Lock) hold(ctx context.Context) (*Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// cleanup bounds the cleanup after a failure, whatever ctx's state.
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	}
	if err := l.register(ctx); err != nil {
		if ctx.Err() != nil {
			cctx, cancel := cleanup()
			l.deregister(cctx) // a registration cut short may have landed
			cancel()
		}
		return nil, err
	}
	// Feeding and renewing use a context of their own, which Release
	// ends, so that they go on until then whatever ctx does.
	fctx, stopCtx := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.feed(fctx, done)
	}()
	// Renewing has a context of its own too: it destroys the session once
	// done closes, until the context given to stop ends.
	rctx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	stop := func(sctx context.Context) {
		close(done)
		stopCtx()
		unhook := context.AfterFunc(sctx, stopRenew)
		wg.Wait()
		unhook()
		stopRenew()
	}
	abandon := func() {
		cctx, cancel := cleanup()
		defer cancel()
		stop(cctx)
		l.deregister(cctx)
	}
	sid, err := l.createSession(ctx)
	if err != nil {
		abandon()
		return nil, fmt.Errorf("create session: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Renews until done closes, then destroys the session, which
		// frees the lock at once. An error means the session ended
		// (its check went critical, say); the lock's monitor sees the
		// lock go.
		w := (&api.WriteOptions{}).WithContext(rctx)
		if err := l.client.Session().RenewPeriodic(l.o.sessionTTL.String(), sid, w, done); err != nil && rctx.Err() == nil {
			l.log.Warn("lease: session ended", zap.String("session", sid), zap.Error(err))
		}
	}()
	lock, err := l.client.LockOpts(&api.LockOptions{
		Key: l.key, Value: []byte(l.o.name), Session: sid,
		LockWaitTime: lockWait, MonitorRetries: monitorRetries,
	})
	if err != nil {
		abandon()
		return nil, fmt.Errorf("lock %s: %w", l.key, err)
	}
	lost, err := lock.Lock(ctx.Done())
	if err != nil || lost == nil {
		abandon()
		if err == nil {
			return nil, ctx.Err() // nil, nil: ctx ended
		}
		return nil, fmt.Errorf("lock %s: %w", l.key, err)
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &Term{l: l, ctx: tctx, cancel: cancel, session: sid, lost: lost, stopFeed: stop, watched: make(chan struct{})}
	go func() {
		defer close(t.watched)
		select {
		case <-lost:
			cancel()
		case <-tctx.Done():
		}
	}()
	l.log.Debug("lease: holding the lock", zap.String("session", sid))
	return t, nil
}

// register registers (again) the Lock's instance with its TTL check,
// passing.
func (l *Lock) register(ctx context.Context) error {
	err := l.client.Agent().ServiceRegisterOpts(&api.AgentServiceRegistration{
		ID: l.serviceID, Name: l.service, Meta: l.o.meta,
		Check: &api.AgentServiceCheck{
			CheckID: l.checkID, Name: l.service + " " + l.o.name + " alive",
			TTL: l.o.checkTTL.String(), Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: deregisterAfter.String(),
		},
	}, api.ServiceRegisterOpts{}.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("register %s: %w", l.service, err)
	}
	return nil
}

// deregister removes the Lock's instance within ctx; a failure is logged
// (the agent removes a critical instance after deregisterAfter).
// An instance the agent no longer knows (404: removed already, e.g. by an
// agent restarted without it) is gone, as wanted: not a failure.
func (l *Lock) deregister(ctx context.Context) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := l.client.Agent().ServiceDeregisterOpts(l.serviceID, q); err != nil && !notFound(err) {
		l.log.Warn("lease: deregistering "+l.service+" failed; its agent removes it a minute after its check went critical", zap.Error(err))
	}
}

// feed marks the check passing every third of its TTL until done closes.
// A failed update is logged and tried again at the next tick; the check
// going critical ends the session, and so the term.
func (l *Lock) feed(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(l.o.checkTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		q := (&api.QueryOptions{}).WithContext(ctx)
		if err := l.client.Agent().UpdateTTLOpts(l.checkID, "", api.HealthPassing, q); err != nil && ctx.Err() == nil {
			l.log.Warn("lease: feeding the check failed", zap.String("check", l.checkID), zap.Error(err))
		}
	}
}

// createSession creates the session tied to the check and to serfHealth.
func (l *Lock) createSession(ctx context.Context) (string, error) {
	// The session ends when the check goes critical (the process died or
	// stalled: within the check TTL), when the node fails (serfHealth),
	// or at the latest when its TTL runs out unrenewed. The body is
	// written here for the lock-delay (see lockDelay).
	var created struct{ ID string }
	_, err := l.client.Raw().Write("/v1/session/create", map[string]any{
		"Name": l.service + " " + l.o.name + " " + l.key, "TTL": l.o.sessionTTL.String(),
		"LockDelay": lockDelay, "Behavior": api.SessionBehaviorRelease,
		"NodeChecks": []string{serfHealth}, "ServiceChecks": []api.ServiceCheck{{ID: l.checkID}},
	}, &created, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return "", err
	}
	if created.ID == "" {
		return "", errors.New("no session ID in the answer")
	}
	return created.ID, nil
}

// notFound reports whether err is the agent's answer that what was asked
// for does not exist (HTTP 404).
func notFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// Backoff is how long a holder waits before its next attempt after n
// failed attempts in a row (n ≥ 1): 1s, doubling up to 30s. graylane
// orchestrate and the rollout controller both wait so between Hold calls,
// riding out an agent that is briefly away.
func Backoff(n int) time.Duration {
	return min(time.Second<<min(max(n, 1)-1, 5), 30*time.Second)
}
