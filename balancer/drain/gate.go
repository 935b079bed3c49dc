package drain

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/graylane/graylane/rule"
)

// RuleSource supplies the rule in force and tells when it changes. The
// balancer implements it; so can anything holding a rule.
type RuleSource interface {
	// Rule returns the rule in force, nil for none. It must not block.
	Rule() *rule.Rule
	// SubscribeRule returns a channel that receives a value after each change
	// of the rule (several changes may share one value: the receiver reads
	// Rule again), and a function that ends the subscription. The source
	// must never block on a full channel.
	SubscribeRule() (<-chan struct{}, func())
}

// ErrClosed is returned by [Gate.Wait] once the gate is closed.
var ErrClosed = errors.New("drain: gate closed")

// Status is a gate's current answer.
type Status struct {
	// Receiving reports whether the rule in force can route traffic to the
	// gate's version (see [Analyze]).
	Receiving bool
	// Reason says which part of the rule decided.
	Reason string
	// Since is when Receiving last changed, or when the gate started.
	Since time.Time
	// Flips counts the changes of Receiving since the gate started.
	Flips uint64
}

// Option configures a [Gate].
type Option interface{ apply(*Gate) }

type optionFunc func(*Gate)

func (f optionFunc) apply(g *Gate) { f(g) }

// WithLogger logs every change of the gate (Info) and of its reason (Debug)
// to l. The default logs nothing.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(g *Gate) {
		if l != nil {
			g.log = l
		}
	})
}

// Gate tells a local consumer (a Kafka consumer loop, a job poller) whether
// the release rule in force still sends its own version any traffic, so an
// old version at weight 0 can stop taking messages and start again if the
// release is rolled back.
//
// A Gate owns one goroutine that follows the [RuleSource]; Close stops it.
// All methods are safe for concurrent use. The source is never blocked by a
// slow reader: [Gate.Changes] channels hold only the latest state.
type Gate struct {
	service, version string
	src              RuleSource
	log              *zap.Logger

	status atomic.Pointer[Status]

	mu     sync.Mutex
	subs   map[chan bool]struct{}
	flip   chan struct{} // closed and replaced at every change, for Wait
	closed bool

	stop        chan struct{}
	done        chan struct{}
	unsubscribe func()
}

// NewGate returns a gate for the local instance of service at version
// (empty: [rule.DefaultVersion]) following src. Its answer is computed
// before NewGate returns. A nil src means no rule ever: always receiving.
func NewGate(service, version string, src RuleSource, opts ...Option) *Gate {
	if version == "" {
		version = rule.DefaultVersion
	}
	g := &Gate{
		service: service,
		version: version,
		src:     src,
		log:     zap.NewNop(),
		subs:    make(map[chan bool]struct{}),
		flip:    make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o.apply(g)
		}
	}
	g.log = g.log.With(zap.String("service", service), zap.String("version", version))
	if src == nil {
		g.status.Store(&Status{Receiving: true, Reason: "no rule source", Since: time.Now()})
		close(g.done)
		return g
	}
	// Subscribe before the first read so that no change falls in between.
	ch, unsubscribe := src.SubscribeRule()
	g.unsubscribe = unsubscribe
	cur := src.Rule()
	v := Analyze(cur, service, version)
	g.status.Store(&Status{Receiving: v.Receiving, Reason: v.Reason, Since: time.Now()})
	g.log.Info("drain gate started", zap.Bool("receiving", v.Receiving), zap.String("reason", v.Reason))
	go g.run(ch, cur)
	return g
}

// Service returns the service the gate was built for.
func (g *Gate) Service() string { return g.service }

// Version returns the version the gate was built for.
func (g *Gate) Version() string { return g.version }

// Receiving reports whether the rule in force can route traffic to the
// gate's version. It does not block or allocate.
func (g *Gate) Receiving() bool { return g.status.Load().Receiving }

// Status returns the current answer with its reason.
func (g *Gate) Status() Status { return *g.status.Load() }

// Changes returns a channel that receives the new value of Receiving after
// every change, and a function that ends the subscription and closes the
// channel. The channel holds one value: a reader that falls behind finds
// only the latest state, which may equal the last value it read, so treat
// each value as "the state is now v". The channel is closed when the gate
// closes.
func (g *Gate) Changes() (<-chan bool, func()) {
	ch := make(chan bool, 1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		close(ch)
		return ch, func() {}
	}
	g.subs[ch] = struct{}{}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if _, ok := g.subs[ch]; ok {
				delete(g.subs, ch)
				close(ch)
			}
		})
	}
}

// Wait blocks until Receiving equals want and returns nil, or returns the
// context's error, or [ErrClosed] when the gate closes first. A consumer
// loop calls Wait(ctx, true) while it is drained.
func (g *Gate) Wait(ctx context.Context, want bool) error {
	for {
		g.mu.Lock()
		closed, flip := g.closed, g.flip
		g.mu.Unlock()
		if g.Receiving() == want {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-flip:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops following the rule source and waits for the gate's
// goroutine; Changes channels are closed and Wait returns [ErrClosed]. The
// last answer stays readable. Close is idempotent and always returns nil.
func (g *Gate) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		<-g.done
		return nil
	}
	g.closed = true
	for ch := range g.subs {
		close(ch)
	}
	clear(g.subs)
	close(g.flip)
	g.mu.Unlock()
	if g.src != nil {
		close(g.stop)
		<-g.done
		g.unsubscribe()
	}
	return nil
}

func (g *Gate) run(ch <-chan struct{}, last *rule.Rule) {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-ch:
		}
		r := g.src.Rule()
		if r == last && r != nil {
			continue
		}
		last = r
		g.update(Analyze(r, g.service, g.version))
	}
}

// update publishes a new verdict, waking readers when Receiving changed.
func (g *Gate) update(v Verdict) {
	old := g.status.Load()
	if old.Receiving == v.Receiving {
		if old.Reason != v.Reason {
			s := *old
			s.Reason = v.Reason
			g.status.Store(&s)
			g.log.Debug("drain gate reason changed", zap.Bool("receiving", v.Receiving), zap.String("reason", v.Reason))
		}
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.status.Store(&Status{Receiving: v.Receiving, Reason: v.Reason, Since: time.Now(), Flips: old.Flips + 1})
	for ch := range g.subs {
		// Keep only the latest state: replace an unread value.
		select {
		case ch <- v.Receiving:
		default:
			select {
			case <-ch:
			default:
			}
			ch <- v.Receiving
		}
	}
	close(g.flip)
	g.flip = make(chan struct{})
	if v.Receiving {
		g.log.Info("drain gate: version receives traffic again", zap.String("reason", v.Reason))
	} else {
		g.log.Info("drain gate: version drained", zap.String("reason", v.Reason))
	}
}
