package discovery

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/graylane/graylane/internal/clock"
	"go.uber.org/zap"
)

// Defaults of the Consul watchers, rule sources and registrar. Each can be
// changed with the option of the same name.
const (
	// DefaultWaitTime is how long one blocking query may wait for a change
	// (Consul's own default; Consul caps it at 10 minutes). An idle watch
	// makes about one request per wait time.
	DefaultWaitTime = 5 * time.Minute
	// DefaultRateInterval and DefaultRateBurst limit the requests of one
	// watch: a burst of up to DefaultRateBurst requests goes out at once
	// (one registration lands as two or three index bumps: the service,
	// its check, the first check result), after which requests are spaced
	// DefaultRateInterval apart, 20 a second at most. A catalog that churns
	// cannot turn the blocking loop into a hot loop, changes arriving
	// faster than that are coalesced, and a change is still seen within
	// about one interval. Fleets with heavy churn may trade latency for
	// load with WithRateLimit.
	DefaultRateInterval = 50 * time.Millisecond
	DefaultRateBurst    = 5
	// DefaultBackoffMin is the first pause after a failed request.
	DefaultBackoffMin = 100 * time.Millisecond
	// DefaultBackoffMax caps the pause between failed requests. It bounds how
	// long a watch takes to notice that Consul is back: at most this long
	// after the agent answers again. Large fleets may raise it to spare
	// their servers while Consul is in trouble.
	DefaultBackoffMax = 1500 * time.Millisecond
)

// Option configures NewConsul, NewConsulRules and Register. Options that do
// not concern a constructor are ignored by it.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	log        *zap.Logger
	keys       Keys
	datacenter string
	tag        string
	stale      bool
	agentCache bool
	perService bool
	token      string
	waitTime   time.Duration
	rateEvery  time.Duration
	rateBurst  int
	backoffMin time.Duration
	backoffMax time.Duration
	// Injected for tests: sleep waits d or until ctx ends (reporting
	// false); jitter returns a number in [0, 1).
	sleep  func(ctx context.Context, d time.Duration) bool
	jitter func() float64
	now    func() time.Time
}

func newOptions(opts []Option) options {
	o := options{
		log:        zap.NewNop(),
		keys:       DefaultKeys(),
		waitTime:   DefaultWaitTime,
		rateEvery:  DefaultRateInterval,
		rateBurst:  DefaultRateBurst,
		backoffMin: DefaultBackoffMin,
		backoffMax: DefaultBackoffMax,
		sleep:      clock.Sleep,
		jitter:     rand.Float64,
		now:        time.Now,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithLogger sets the logger (default zap.NewNop()). Nil keeps the default.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.log = l
		}
	})
}

// WithKeys sets the metadata key names that instances are read with and
// that Register writes. Empty fields keep their defaults (see DefaultKeys).
func WithKeys(k Keys) Option {
	return optionFunc(func(o *options) { o.keys = k.withDefaults() })
}

// WithDatacenter queries another datacenter than the agent's own.
func WithDatacenter(dc string) Option {
	return optionFunc(func(o *options) { o.datacenter = dc })
}

// WithTag limits watched instances to those carrying a Consul tag; the
// filter runs in Consul, so other instances cost no bandwidth.
func WithTag(tag string) Option {
	return optionFunc(func(o *options) { o.tag = tag })
}

// WithStale lets any Consul server answer, not only the leader: reads scale
// across servers and keep working without a leader, at the price of
// answers that may lag by a little. Recommended for large fleets.
func WithStale() Option {
	return optionFunc(func(o *options) { o.stale = true })
}

// WithAgentCache serves health queries from the local agent's cache
// (Consul's ?cached), so many processes on one host share one watch of
// the servers. KV reads are not cached by Consul and ignore it.
func WithAgentCache() Option {
	return optionFunc(func(o *options) { o.agentCache = true })
}

// WithToken sets an ACL token for every request, overriding the client's
// token (which api.DefaultConfig reads from CONSUL_HTTP_TOKEN).
func WithToken(token string) Option {
	return optionFunc(func(o *options) { o.token = token })
}

// WithWaitTime sets how long one blocking query waits for a change
// (default DefaultWaitTime). Values <= 0 keep the default; Consul caps the
// wait at 10 minutes.
func WithWaitTime(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.waitTime = d
		}
	})
}

// WithRateLimit limits the requests of one watch to one per every on
// average, with bursts of up to burst requests (defaults
// DefaultRateInterval, DefaultRateBurst). every == 0 disables the limit;
// burst < 1 counts as 1.
func WithRateLimit(every time.Duration, burst int) Option {
	return optionFunc(func(o *options) {
		if every >= 0 {
			o.rateEvery = every
		}
		o.rateBurst = max(burst, 1)
	})
}

// WithBackoff sets the pause after failed requests: it starts at min,
// doubles with every further failure up to max, and is jittered to between
// half and all of that value so that many watchers do not retry in step.
// Values <= 0 keep the defaults (DefaultBackoffMin, DefaultBackoffMax).
func WithBackoff(min, max time.Duration) Option {
	return optionFunc(func(o *options) {
		if min > 0 {
			o.backoffMin = min
		}
		if max > 0 {
			o.backoffMax = max
		}
		if o.backoffMax < o.backoffMin {
			o.backoffMax = o.backoffMin
		}
	})
}

// backoff returns the pause after the n-th consecutive failure (n >= 1).
func (o *options) backoff(n int) time.Duration {
	d := o.backoffMin
	for i := 1; i < n && d < o.backoffMax; i++ {
		d *= 2
	}
	d = min(d, o.backoffMax)
	return d/2 + time.Duration(o.jitter()*float64(d/2))
}
