package balancer

import (
	"bytes"
	"context"
	"net/http"
	"sync"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
	"go.uber.org/zap"
)

// activeRule is the compiled rule in force, with what every decision
// shares precomputed. Published whole through an atomic pointer, so a
// request reads one rule from start to end.
type activeRule struct {
	rule   *rule.Rule
	base   Route // failover and blacklist values of the rule
	header []headerField
	source string
}

type headerField struct {
	name  string   // canonical
	value []string // shared, read-only
}

func newActiveRule(r *rule.Rule, source string) *activeRule {
	ar := &activeRule{rule: r, source: source}
	ar.base.VersionPrefer = r.Failover.VersionPrefer
	ar.base.VersionFailover = r.Failover.VersionFailover
	ar.base.IDBlacklist = r.Blacklist.ID
	ar.base.AddressBlacklist = r.Blacklist.Address
	for _, f := range r.Release.Header {
		ar.header = append(ar.header, headerField{name: http.CanonicalHeaderKey(f.Name), value: []string{f.Value}})
	}
	return ar
}

// Rule returns the rule in force, or nil.
func (b *Balancer) Rule() *rule.Rule {
	if ar := b.rule.Load(); ar != nil {
		return ar.rule
	}
	return nil
}

// setRule publishes r (nil clears the rule) and logs it, unless it encodes
// to the same XML as the rule in force.
func (b *Balancer) setRule(r *rule.Rule, xml []byte, source string) {
	if r == nil {
		if b.rule.Swap(nil) != nil {
			b.log.Info("rule cleared; plain load balancing", zap.String("source", source))
		}
		return
	}
	if xml == nil {
		var err error
		if xml, err = rule.EncodeXML(r); err != nil {
			b.log.Warn("rule cannot be shown as XML", zap.Error(err))
		}
	}
	if cur := b.rule.Load(); cur != nil && xml != nil {
		if curXML, err := rule.EncodeXML(cur.rule); err == nil && bytes.Equal(curXML, xml) {
			return
		}
	}
	b.rule.Store(newActiveRule(r, source))
	b.log.Info("rule applied", zap.String("source", source), zap.ByteString("rule", xml))
	if len(r.Ignored) > 0 {
		b.log.Info("rule sections not used by graylane", zap.Strings("sections", r.Ignored))
	}
}

// followRules applies each document w publishes until ctx ends. A spec is
// orchestrated against the live instances of its services, and again
// whenever they change.
func (b *Balancer) followRules(ctx context.Context, w *discovery.RuleWatch) {
	defer b.wg.Done()
	changed, unsubscribe := w.Subscribe()
	defer unsubscribe()
	f := &specFollower{b: b, notify: make(chan struct{}, 1)}
	defer f.stop()
	var last *discovery.RuleDoc
	apply := func() {
		doc := w.Current()
		if doc == last {
			return
		}
		last = doc
		b.applyDoc(ctx, doc, f)
	}
	ready := w.Ready()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ready:
			ready = nil // closed for good: once is enough
			apply()
		case <-changed:
			apply()
		case <-f.notify:
			f.orchestrate()
		}
	}
}

// applyDoc parses one published document and puts it in force; a bad one
// is logged and changes nothing.
func (b *Balancer) applyDoc(ctx context.Context, doc *discovery.RuleDoc, f *specFollower) {
	source := doc.Key
	if source == "" {
		source = "static"
	}
	if doc.Data == nil {
		f.stop()
		b.setRule(nil, nil, source)
		return
	}
	r, spec, err := rule.ParseDocument(doc.Data)
	if err != nil {
		b.log.Error("rule rejected; the previous rule stays in force",
			zap.String("source", source), zap.Uint64("index", doc.Index), zap.Error(err))
		return
	}
	if spec != nil {
		f.start(ctx, spec, source)
		f.orchestrate()
		return
	}
	f.stop()
	b.setRule(r, nil, source)
}

// specFollower keeps an orchestrated rule up to date with the versions of
// its services. It is used by the rule goroutine only, apart from the
// forwarders it starts, which only send on notify.
type specFollower struct {
	b      *Balancer
	notify chan struct{}
	spec   *rule.Spec
	source string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start follows spec, replacing any spec followed before.
func (f *specFollower) start(ctx context.Context, spec *rule.Spec, source string) {
	f.stop()
	f.spec, f.source = spec, source
	ctx, f.cancel = context.WithCancel(ctx)
	for _, name := range spec.Services() {
		ch, unsubscribe := f.b.reg.Watch(name).Subscribe()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer unsubscribe()
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					select {
					case f.notify <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
}

// stop ends following the current spec, if any, and waits for its
// forwarders.
func (f *specFollower) stop() {
	if f.cancel != nil {
		f.cancel()
		f.wg.Wait()
		f.cancel = nil
	}
	f.spec = nil
}

// orchestrate expands the followed spec with the current instances. A
// service without instances yet keeps the previous rule; its first
// instances trigger another attempt.
func (f *specFollower) orchestrate() {
	if f.spec == nil {
		return
	}
	inv := make(rule.Inventory, len(f.spec.Service))
	for _, name := range f.spec.Service {
		snap := f.b.reg.Watch(name).Snapshot()
		list := make([]rule.Instance, len(snap.Instances))
		for i := range snap.Instances {
			list[i] = rule.Instance{Version: snap.Instances[i].Version, Started: snap.Instances[i].Started}
		}
		inv[name] = list
	}
	r, err := rule.Orchestrate(f.spec, inv)
	if err != nil {
		f.b.log.Warn("orchestration failed; the previous rule stays in force",
			zap.String("source", f.source), zap.Error(err))
		return
	}
	f.b.setRule(r, nil, f.source+" (orchestrated)")
}
