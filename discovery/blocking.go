package discovery

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// fetchFunc performs one query with q and handles its answer. It returns
// the answer's X-Consul-Index.
type fetchFunc func(q *api.QueryOptions) (index uint64, err error)

// queryOptions returns the options common to every query of a watch.
func (o *options) queryOptions(cacheable bool) api.QueryOptions {
	return api.QueryOptions{
		Datacenter: o.datacenter,
		AllowStale: o.stale,
		UseCache:   o.agentCache && cacheable,
		Token:      o.token,
		WaitTime:   o.waitTime,
	}
}

// requestTimeout bounds one blocking request: Consul answers within the
// wait time plus up to wait/16 of jitter; the rest is for the network. It
// catches connections that died silently (a vanished host, a dropped
// route), which would otherwise block a watch forever.
func (o *options) requestTimeout() time.Duration {
	return o.waitTime + o.waitTime/16 + 10*time.Second
}

// runBlocking runs the blocking-query loop of one watch until ctx ends,
// following Consul's guidance for blocking queries:
//   - the first request, the first after a failure and the first after an
//     index went backwards read at once (no index: a non-blocking read),
//     then blocking resumes at the index that read answered. An agent
//     restarted without its state (a dev agent, a lost data directory)
//     starts its indexes again from 1; waiting on any index, even 1, could
//     hide the restart's changes (a rule gone with the old state) for a
//     whole wait time;
//   - an answer of index 0 becomes 1, so index 0 is never sent after a
//     successful read (that would be a hot loop of non-blocking reads);
//   - requests are rate-limited by a token bucket (rateEvery, rateBurst);
//   - failures back off exponentially with jitter, capped.
func (o *options) runBlocking(ctx context.Context, what string, base api.QueryOptions, fetch fetchFunc) {
	log := o.log.With(zap.String("watch", what))
	var (
		index    uint64 // 0: the next request reads at once
		failures int
		limit    = newTokenBucket(o.rateEvery, o.rateBurst, o.now())
	)
	for ctx.Err() == nil {
		if wait := limit.take(o.now()); wait > 0 && !o.sleep(ctx, wait) {
			return
		}

		q := base
		q.WaitIndex = index
		rctx, cancel := context.WithTimeout(ctx, o.requestTimeout())
		next, err := fetch(q.WithContext(rctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Whatever the agent is when it answers again, read it at once.
			index = 0
			failures++
			pause := o.backoff(failures)
			if failures == 1 {
				log.Warn("consul query failed; keeping the last answer and retrying", zap.Error(err), zap.Duration("retry_in", pause))
			} else {
				log.Debug("consul query failed again", zap.Error(err), zap.Int("failures", failures), zap.Duration("retry_in", pause))
			}
			if !o.sleep(ctx, pause) {
				return
			}
			continue
		}
		if failures > 0 {
			log.Info("consul query recovered", zap.Int("failures", failures))
			failures = 0
		}
		switch {
		case next < index:
			// The answer was handled; read again at once rather than wait
			// on an index the agent may not reach for a long time.
			log.Debug("consul index went backwards; resetting", zap.Uint64("from", index), zap.Uint64("to", next))
			next = 0
		case next == 0:
			log.Debug("consul answered index 0; using 1")
			next = 1
		}
		index = next
	}
}

// tokenBucket spaces requests: it holds up to burst tokens, gains one
// every interval, and each request takes one.
type tokenBucket struct {
	every  time.Duration
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(every time.Duration, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{every: every, burst: float64(burst), tokens: float64(burst), last: now}
}

// take takes a token at now and returns how long to wait before using it.
func (b *tokenBucket) take(now time.Time) time.Duration {
	if b.every <= 0 {
		return 0
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+float64(el)/float64(b.every))
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	// The debt is paid by the wait: the token accrues while sleeping.
	wait := time.Duration(-b.tokens * float64(b.every))
	b.tokens = 0
	b.last = b.last.Add(wait)
	return wait
}

// isStatus reports whether err is an HTTP answer from Consul with the code.
func isStatus(err error, code int) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == code
	}
	var sp *api.StatusError
	return errors.As(err, &sp) && sp.Code == code
}
