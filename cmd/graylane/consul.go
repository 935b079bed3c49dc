package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// consulFlags are the flags of every command that talks to Consul.
type consulFlags struct {
	addr    string
	timeout time.Duration
}

func addConsulFlags(fs *flag.FlagSet) *consulFlags {
	c := &consulFlags{}
	fs.StringVar(&c.addr, "consul", "", "Consul HTTP address, host:port or a URL (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "limit for the Consul operations")
	return c
}

// maxBlockingWait is the longest a blocking query waits at the agent:
// Consul caps every wait at 10 minutes and adds up to a sixteenth of it as
// jitter. The commands' blocking queries wait less: discovery's watches
// discovery.DefaultWaitTime (5m), consul/api's lock monitor Consul's
// default (5m), a lock acquisition 2s.
const maxBlockingWait = 10*time.Minute + 10*time.Minute/16

// responseHeaderTimeout bounds how long the client waits for an agent's
// answer to any request, beyond the longest blocking query. Most requests
// carry a context bounding them tighter; this catches those that cannot
// (consul/api's lock monitor) when the agent accepts connections but never
// answers (its process frozen, its packets dropped).
const responseHeaderTimeout = maxBlockingWait + time.Minute

// client returns a Consul client from api.DefaultConfig (CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, ...) with -consul replacing the
// address, whose transport waits at most responseHeaderTimeout for an
// answer.
func (c *consulFlags) client() (*api.Client, string, error) {
	cfg := c.config()
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, cfg.Address, fmt.Errorf("consul client: %w", err)
	}
	return cl, cfg.Scheme + "://" + cfg.Address, nil
}

// config returns the configuration of client.
func (c *consulFlags) config() *api.Config {
	cfg := api.DefaultConfig()
	cfg.Transport.ResponseHeaderTimeout = responseHeaderTimeout
	if c.addr != "" {
		addr := c.addr
		if scheme, rest, ok := strings.Cut(addr, "://"); ok {
			cfg.Scheme, addr = scheme, strings.TrimSuffix(rest, "/")
		}
		cfg.Address = addr
	}
	return cfg
}

func (c *consulFlags) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

// reachable checks that the agent answers, so that a wrong address fails
// fast with the transport's own error rather than a timeout.
func reachable(ctx context.Context, cl *api.Client, where string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if _, err := cl.Status().LeaderWithQueryOptions(q); err != nil {
		return fmt.Errorf("consul at %s: %w", where, err)
	}
	return nil
}

// inventory reads the live (passing) instances of services the way the
// balancer sees them: through discovery's Consul watch, so versions and
// start times come from the same metadata mapping.
func inventory(ctx context.Context, cl *api.Client, where string, services []string) (rule.Inventory, error) {
	if err := reachable(ctx, cl, where); err != nil {
		return nil, err
	}
	reg := discovery.NewConsul(cl)
	defer reg.Close()
	inv := make(rule.Inventory, len(services))
	for _, svc := range services {
		w := reg.Watch(svc)
		select {
		case <-w.Ready():
		case <-ctx.Done():
			return nil, fmt.Errorf("consul at %s: no answer for service %q: %w", where, svc, ctx.Err())
		}
		snap := w.Snapshot()
		list := make([]rule.Instance, 0, len(snap.Instances))
		for _, in := range snap.Instances {
			list = append(list, rule.Instance{Version: in.Version, Started: in.Started})
		}
		inv[svc] = list
	}
	return inv, nil
}

// orchestrate expands spec against Consul's live instances.
func orchestrate(cf *consulFlags, spec *rule.Spec) (*rule.Rule, error) {
	cl, where, err := cf.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := cf.context()
	defer cancel()
	inv, err := inventory(ctx, cl, where, spec.Services())
	if err != nil {
		return nil, err
	}
	return rule.Orchestrate(spec, inv)
}

// readKey returns the value of a KV key, failing when it is absent.
func readKey(cf *consulFlags, key string) ([]byte, error) {
	cl, where, err := cf.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := cf.context()
	defer cancel()
	pair, _, err := cl.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul at %s: read %q: %w", where, key, err)
	}
	if pair == nil {
		return nil, fmt.Errorf("consul at %s: key %q not found", where, key)
	}
	return pair.Value, nil
}
