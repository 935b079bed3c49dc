package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
)

// Consul is what an example builds from the client of a Consul agent, so
// that the discovery calls stay in the example: Open owns the result and
// closes it.
type Consul struct {
	// Registry is the example's discovery.NewConsul.
	Registry discovery.Registry
	// Rules is the example's discovery.NewConsulRules; nil when the example
	// has no rule.
	Rules *discovery.RuleWatch
	// RuleKey is the KV key that Publish writes and Close deletes.
	RuleKey string
	// Register is the example's discovery.Register with its client and
	// options.
	Register func(ctx context.Context, r discovery.Registration) (*discovery.Registrar, error)
}

// World is where a demo's services find each other and their rule: the
// embedded static registry, or a Consul agent. Its methods are safe for
// concurrent use; Close undoes everything the world did.
type World struct {
	// Name says which it is: "embedded registry" or "Consul at <addr>".
	Name string
	// Registry is where balancers look services up.
	Registry discovery.Registry
	// Rules is the rule watch for WithRuleSource; nil on Consul when the
	// example built none.
	Rules *discovery.RuleWatch

	publish  func(doc string) error
	register func(ctx context.Context, r discovery.Registration) error
	close    func()
}

// Open returns the embedded world when consulAddr is empty. Otherwise it
// connects to the agent at consulAddr, checks that the agent has a leader,
// and hands the client to consul, which builds the example's registry, rule
// watch and registration.
func Open(consulAddr string, consul func(client *api.Client) Consul) (*World, error) {
	if consulAddr == "" {
		return embedded(), nil
	}
	cfg := api.DefaultConfig()
	cfg.Address = consulAddr
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := client.Status().Leader(); err != nil {
		return nil, fmt.Errorf("consul at %s: %w", consulAddr, err)
	}
	c := consul(client)
	var mu sync.Mutex
	var registrars []*discovery.Registrar
	return &World{
		Name:     "Consul at " + consulAddr,
		Registry: c.Registry,
		Rules:    c.Rules,
		publish: func(doc string) error {
			if c.RuleKey == "" {
				return errors.New("no rule key to publish to")
			}
			_, err := client.KV().Put(&api.KVPair{Key: c.RuleKey, Value: []byte(doc)}, nil)
			return err
		},
		register: func(ctx context.Context, r discovery.Registration) error {
			reg, err := c.Register(ctx, r)
			if err != nil {
				return err
			}
			mu.Lock()
			registrars = append(registrars, reg)
			mu.Unlock()
			return nil
		},
		close: func() {
			if c.Rules != nil {
				c.Rules.Close()
			}
			c.Registry.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, r := range registrars {
				r.Close()
			}
			if c.RuleKey != "" {
				client.KV().Delete(c.RuleKey, nil) //nolint:errcheck // best effort clean-up
			}
		},
	}, nil
}

func embedded() *World {
	reg := discovery.NewStatic()
	rules := discovery.NewStaticRules(nil)
	return &World{
		Name:     "embedded registry",
		Registry: reg,
		Rules:    rules,
		publish:  func(doc string) error { return rules.Set([]byte(doc)) },
		register: func(_ context.Context, r discovery.Registration) error {
			return reg.Add(discovery.Instance{
				Service: r.Service, Address: r.Address, Port: r.Port,
				Version: r.Version, Region: r.Region, Zone: r.Zone, Env: r.Env, Group: r.Group,
				Meta: r.Meta,
			})
		},
		close: func() { rules.Close(); reg.Close() },
	}
}

// Publish publishes a rule document: to the Consul rule key, or straight
// into the embedded rule watch.
func (w *World) Publish(doc string) error { return w.publish(doc) }

// Register makes an instance visible: registered with the agent (and
// deregistered by Close), or added to the embedded registry.
func (w *World) Register(ctx context.Context, r discovery.Registration) error {
	if err := w.register(ctx, r); err != nil {
		return fmt.Errorf("register %s %s: %w", r.Service, r.Version, err)
	}
	return nil
}

// Wait returns once the registry shows at least n healthy instances of
// service.
func (w *World) Wait(ctx context.Context, service string, n int) error {
	watch := w.Registry.Watch(service)
	changed, stop := watch.Subscribe()
	defer stop()
	for watch.Snapshot().Len() < n {
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d instances visible: %w", service, watch.Snapshot().Len(), n, ctx.Err())
		}
	}
	return nil
}

// Close stops the watches, deregisters what Register registered and deletes
// the rule key.
func (w *World) Close() { w.close() }
