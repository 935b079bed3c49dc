package discovery

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

var _ Registry = (*Consul)(nil)

// Consul is a Registry that watches the healthy instances of services in
// Consul (/v1/health/service/<name>?passing) and publishes each changed
// answer as a new Snapshot. While Consul is unreachable the last snapshot
// stays in force and the watch retries with capped, jittered backoff; the
// failure shows in the watch's Err.
//
// Every Consul of a process built on the same *api.Client with the same
// query options (datacenter, tag, stale reads, agent cache, token, wait
// time, keys) shares one change feed that holds at most six connections to
// the agent, whatever the number of services watched (see the package
// documentation); the first one's logger, rate limit and backoff serve
// them all. Build one client per agent and process, and pass it to every
// NewConsul. WithWatchPerService restores one blocking query per service.
//
// ACL token, TLS and address come from the client's api.Config (and so from
// the usual CONSUL_HTTP_* environment when built with api.DefaultConfig).
type Consul struct {
	client *api.Client
	opts   options
	feed   *feed        // nil with WithWatchPerService or without a client
	open   atomic.Int64 // per-service mode: requests open to the agent

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watches map[string]*Watch
	closed  bool
	refused atomic.Uint64
	answers atomic.Uint64
	warned  atomic.Bool // a 429 streak was reported
}

// classify names the agent's limit in a 429 and warns once per streak.
func (c *Consul) classify(err error) error {
	if !isStatus(err, 429) {
		return err
	}
	c.refused.Add(1)
	held := int(c.open.Load())
	if !c.warned.Swap(true) {
		c.opts.log.Warn("consul agent refuses this host's connections: raise limits.http_max_conns_per_client on the agent (200 by default, shared by every process on the host), or drop WithWatchPerService",
			zap.String("agent_setting", "limits.http_max_conns_per_client"), zap.Int("connections_held", held), zap.Error(err))
	}
	return &limitError{held: held, err: err}
}

// NewConsul returns a registry reading from client. It starts nothing:
// each service's watch starts on its first Watch call.
func NewConsul(client *api.Client, opts ...Option) *Consul {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consul{
		client:  client,
		opts:    newOptions(opts),
		ctx:     ctx,
		cancel:  cancel,
		watches: make(map[string]*Watch),
	}
	if client != nil && !c.opts.perService {
		c.feed = acquireFeed(client, c.opts)
	}
	return c
}

// WithWatchPerService makes NewConsul run one blocking query, and so hold
// one connection to the agent, per watched service, as graylane did
// before the shared feed. It answers a change with one request instead of
// two, but a stock agent serves at most 200 connections per client address,
// shared by every process on the host: use it only for a few services, or
// with an agent whose limits.http_max_conns_per_client is raised to match.
func WithWatchPerService() Option {
	return optionFunc(func(o *options) { o.perService = true })
}

// ConsulStats counts a Consul's watches by state, for metrics. With the
// shared feed (the default) the counts are the feed's, over every Consul
// that shares it.
type ConsulStats struct {
	// Services is the number of services watched.
	Services int
	// Unanswered is the number of watched services with no answer yet:
	// their watches are not Ready.
	Unanswered int
	// Failing is the number of watched services whose last read failed
	// (their watches' Err is not nil).
	Failing int
	// Connections is the number of requests open to the agent now, each
	// holding one connection: at most six with the shared feed.
	Connections int
	// Refused counts the requests the agent refused with 429 Too Many
	// Requests (see ErrAgentLimit).
	Refused uint64
	// Answers counts the answers the agent gave: FeedAnswers of them to
	// the shared feed's two blocking queries, the rest to reads of
	// services.
	Answers     uint64
	FeedAnswers uint64
}

// Stats returns the current counts of c's watches.
func (c *Consul) Stats() ConsulStats {
	if c.feed != nil {
		return c.feed.stats()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ConsulStats{Services: len(c.watches), Connections: int(c.open.Load()), Refused: c.refused.Load(), Answers: c.answers.Load()}
	for _, w := range c.watches {
		if !isClosed(w.Ready()) {
			st.Unanswered++
		}
		if w.Err() != nil {
			st.Failing++
		}
	}
	return st
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Watch returns the live view of service, starting its blocking query on
// first use. It never blocks; wait on the watch's Ready to have the first
// answer. After Close, a service not watched before gets a watch that
// never becomes ready.
func (c *Consul) Watch(service string) *Watch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.watches[service]; ok {
		return w
	}
	w := NewWatch(service)
	c.watches[service] = w
	if c.closed {
		return w
	}
	if c.client == nil || service == "" {
		c.opts.log.Error("consul watch: cannot watch", zap.String("service", service), zap.Bool("no_client", c.client == nil))
		return w
	}
	if c.feed != nil {
		c.feed.add(w)
		return w
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(w)
	}()
	return w
}

// Close stops every watch and waits for their goroutines. The watches keep
// their last snapshots. Close is idempotent.
func (c *Consul) Close() error {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	watches := make([]*Watch, 0, len(c.watches))
	for _, w := range c.watches {
		watches = append(watches, w)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.feed != nil && !was {
		for _, w := range watches {
			c.feed.remove(w)
		}
		c.feed.release()
	}
	return nil
}

func (c *Consul) run(w *Watch) {
	service := w.Service()
	log := c.opts.log.With(zap.String("service", service))
	// Problems with an instance are logged once while they last, not on
	// every answer.
	reported := map[string]struct{}{}
	base := c.opts.queryOptions(true)
	c.opts.runBlocking(c.ctx, "health "+service, base, func(q *api.QueryOptions) (uint64, error) {
		c.open.Add(1)
		entries, meta, err := c.client.Health().Service(service, c.opts.tag, true, q)
		c.open.Add(-1)
		if err == nil {
			c.answers.Add(1)
		}
		if err != nil {
			if c.ctx.Err() == nil {
				w.Fail(c.classify(err))
			}
			return 0, err
		}
		w.Fail(nil)
		seen := make(map[string]struct{}, len(reported))
		snap := snapshotFromEntries(service, meta.LastIndex, &c.opts.keys, entries, func(p *EntryError) {
			msg := p.Error()
			seen[msg] = struct{}{}
			if _, ok := reported[msg]; !ok {
				log.Warn("consul watch: ignoring bad instance data", zap.Error(p))
			}
		})
		reported = seen
		if ce := log.Check(zap.DebugLevel, "consul watch: answer"); ce != nil {
			ce.Write(zap.Uint64("index", meta.LastIndex), zap.Int("entries", len(entries)), zap.Uint64("sent_index", q.WaitIndex))
		}
		if w.Publish(snap) {
			log.Debug("consul watch: published", zap.Int("instances", snap.Len()),
				zap.Strings("versions", snap.Versions), zap.Uint64("index", meta.LastIndex))
		}
		return meta.LastIndex, nil
	})
}
