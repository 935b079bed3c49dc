package discovery

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// ErrNotStatic is returned by RuleWatch.Set on a watch fed by Consul.
var ErrNotStatic = errors.New("rule watch is fed by Consul, not set by hand")

// RuleDoc is one rule document as stored, not parsed: parsing belongs to
// package rule. Data == nil means "no rule" (plain load balancing).
type RuleDoc struct {
	// Key is the KV key the document came from; empty for "no rule" and for
	// static documents.
	Key string
	// Data is the document's bytes; nil when there is no rule. Read-only.
	Data []byte
	// Index is the KV pair's ModifyIndex (a static watch's change count).
	Index uint64
	// Group reports that Data came from the group-wide key because the
	// service has no rule of its own.
	Group bool
	// Base is the group-wide document when both keys hold one: Data (the
	// service's own) is then assembled over it section by section, as
	// Nepxion's RuleEntityWrapper does (rule.Merge); nil otherwise.
	// Read-only.
	Base *RuleDoc
}

// blank reports whether a stored value holds no document: Nepxion treats
// a blank value (empty, or white space only) as no rule at all
// (ConfigAdapter.callbackConfig fires RuleClearedEvent), so writing one
// clears the key's rule rather than being rejected as a bad document.
func blank(data []byte) bool { return len(bytes.TrimSpace(data)) == 0 }

// sameDoc reports whether two documents are the same publication.
func sameDoc(a, b *RuleDoc) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Key == b.Key && a.Group == b.Group && (a.Data == nil) == (b.Data == nil) &&
		bytes.Equal(a.Data, b.Data) && sameDoc(a.Base, b.Base)
}

// RuleKeys name the Consul KV keys of a service's rule. The Service key
// wins when both hold a value; either may be empty to watch only the other.
type RuleKeys struct {
	Service string // the service's own rule
	Group   string // the rule shared by the whole group
}

// NepxionRuleKeys returns Nepxion Discovery's Consul key layout:
// "<group>-<serviceID>" for the service's own (partial) rule and
// "<group>-<group>" for the group's global rule.
func NepxionRuleKeys(group, serviceID string) RuleKeys {
	return RuleKeys{Service: group + "-" + serviceID, Group: group + "-" + group}
}

// RuleWatch is the live rule document of one service. The document is
// replaced whole on every change; readers never lock. An unchanged value
// (even one written again) publishes nothing.
type RuleWatch struct {
	cur   atomic.Pointer[RuleDoc]
	ready chan struct{}
	once  sync.Once

	mu   sync.Mutex // orders publishes
	subs Notifier

	static bool
	index  uint64 // static change count, under mu

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRuleWatch() *RuleWatch {
	r := &RuleWatch{ready: make(chan struct{})}
	r.cur.Store(&RuleDoc{})
	return r
}

// NewStaticRules returns a rule watch holding data (nil for no rule),
// ready at once; Set changes it. For examples, tests and fixed rules.
func NewStaticRules(data []byte) *RuleWatch {
	r := newRuleWatch()
	r.static = true
	r.cancel = func() {}
	_ = r.Set(data)
	return r
}

// Set replaces the document of a static rule watch with a copy of data
// (nil, or a blank value as in KV, for no rule). On a watch fed by Consul
// it returns ErrNotStatic.
func (r *RuleWatch) Set(data []byte) error {
	if !r.static {
		return ErrNotStatic
	}
	r.mu.Lock()
	r.index++
	doc := &RuleDoc{Index: r.index}
	if !blank(data) {
		doc.Data = bytes.Clone(data)
	}
	r.mu.Unlock()
	r.publish(doc)
	return nil
}

// Current returns the current document; never nil. Before the first answer
// it holds no rule.
func (r *RuleWatch) Current() *RuleDoc { return r.cur.Load() }

// Ready is closed once the first answer has been published (even "no
// rule"). With two keys it waits for both, so a group rule is never shown
// in place of a service rule that simply had not arrived yet.
func (r *RuleWatch) Ready() <-chan struct{} { return r.ready }

// Subscribe returns a channel that receives a value after each published
// change, and a function that ends the subscription. As with Watch, the
// publisher never blocks: a slow subscriber sees one wake-up for many
// changes and reads the latest Current.
func (r *RuleWatch) Subscribe() (<-chan struct{}, func()) { return r.subs.Subscribe() }

// Close stops watching Consul and waits for the watch's goroutines. The
// last document stays readable. Idempotent.
func (r *RuleWatch) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// publish stores doc unless it equals the current document, and reports
// whether it did. The watch becomes ready either way.
func (r *RuleWatch) publish(doc *RuleDoc) bool {
	defer r.once.Do(func() { close(r.ready) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if sameDoc(r.cur.Load(), doc) {
		return false
	}
	r.cur.Store(doc)
	r.subs.Notify()
	return true
}

// NewConsulRules watches the KV keys of a service's rule with blocking
// queries and returns the live document: the Service key's value when it
// exists, with the Group key's as its Base when that exists too (the
// balancer merges them section by section, as Nepxion does), else the
// Group key's, else no rule. A deleted key, or one holding a blank value
// (empty or white space: Nepxion's way to clear a rule), delivers no rule
// from that key. While Consul is unreachable the last document stays in
// force. Close stops the watch.
func NewConsulRules(client *api.Client, keys RuleKeys, opts ...Option) *RuleWatch {
	o := newOptions(opts)
	r := newRuleWatch()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if client == nil || (keys.Service == "" && keys.Group == "") {
		o.log.Error("consul rules: nothing to watch", zap.Bool("no_client", client == nil),
			zap.String("service_key", keys.Service), zap.String("group_key", keys.Group))
		return r
	}

	// Each key has its own blocking loop; the latest value of each is kept
	// here and the combination is published after every answer.
	var (
		mu      sync.Mutex
		svc     *RuleDoc // nil until the service key answered
		grp     *RuleDoc
		pending = 0
	)
	combine := func() {
		// mu held.
		if pending > 0 {
			return
		}
		doc := &RuleDoc{}
		hasSvc, hasGrp := svc != nil && svc.Data != nil, grp != nil && grp.Data != nil
		switch {
		case hasSvc && hasGrp:
			merged := *svc
			merged.Base = grp
			doc = &merged
		case hasSvc:
			doc = svc
		case hasGrp:
			doc = grp
		}
		if r.publish(doc) {
			fields := []zap.Field{zap.String("key", doc.Key), zap.Bool("group", doc.Group),
				zap.Int("bytes", len(doc.Data)), zap.Uint64("index", doc.Index)}
			if doc.Base != nil {
				fields = append(fields, zap.String("base_key", doc.Base.Key), zap.Uint64("base_index", doc.Base.Index))
			}
			o.log.Info("consul rules: rule changed", fields...)
		}
	}
	watchKey := func(key string, group bool, slot **RuleDoc) {
		pending++
		first := true
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			o.runBlocking(ctx, "kv "+key, o.queryOptions(false), func(q *api.QueryOptions) (uint64, error) {
				pair, meta, err := client.KV().Get(key, q)
				if err != nil {
					return 0, err
				}
				doc := &RuleDoc{Key: key, Group: group}
				if pair != nil {
					doc.Index = pair.ModifyIndex
					if !blank(pair.Value) {
						doc.Data = pair.Value
					}
				}
				mu.Lock()
				*slot = doc
				if first {
					first = false
					pending--
				}
				combine()
				mu.Unlock()
				return meta.LastIndex, nil
			})
		}()
	}
	mu.Lock()
	defer mu.Unlock()
	if keys.Service != "" {
		watchKey(keys.Service, false, &svc)
	}
	if keys.Group != "" && keys.Group != keys.Service {
		watchKey(keys.Group, true, &grp)
	}
	return r
}
