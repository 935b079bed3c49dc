package discovery

import (
	"context"
	"sync"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

var _ Registry = (*Consul)(nil)

// Consul is a Registry that watches Consul's health endpoint: one
// goroutine per watched service runs a blocking query over
// /v1/health/service/<name>?passing and publishes each changed answer as a
// new Snapshot. While Consul is unreachable the last snapshot stays in
// force; the watch retries with capped, jittered backoff.
//
// ACL token, TLS and address come from the client's api.Config (and so from
// the usual CONSUL_HTTP_* environment when built with api.DefaultConfig).
type Consul struct {
	client *api.Client
	opts   options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watches map[string]*Watch
	closed  bool
}

// NewConsul returns a registry reading from client. It starts nothing:
// each service's watch starts on its first Watch call.
func NewConsul(client *api.Client, opts ...Option) *Consul {
	ctx, cancel := context.WithCancel(context.Background())
	return &Consul{
		client:  client,
		opts:    newOptions(opts),
		ctx:     ctx,
		cancel:  cancel,
		watches: make(map[string]*Watch),
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
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
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
		entries, meta, err := c.client.Health().Service(service, c.opts.tag, true, q)
		if err != nil {
			return 0, err
		}
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
