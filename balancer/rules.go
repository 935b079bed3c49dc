package balancer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/pattern"
	"github.com/graylane/graylane/rule"
	"go.uber.org/zap"
)

// activeRule is the compiled rule in force, with what every decision
// shares precomputed. Published whole through an atomic pointer, so a
// request reads one rule from start to end.
type activeRule struct {
	rule   *rule.Rule
	base   Route            // failover and blacklist values of the rule
	disco  *discoveryRoutes // the rule's <discovery> section for this caller; nil when it routes nothing
	header []headerField
	xml    []byte // the rule encoded as XML; nil if it cannot be
	prov   provenance
}

// provenance says where a rule in force came from, for the debug view.
type provenance struct {
	source string // "kv", "static" or "fixed"
	key    string // the KV key, for source "kv"
	index  uint64 // the document's KV ModifyIndex (a static watch's count)
	group  bool   // the key is the group-wide one
	// baseKey and baseIndex name the group document the service rule was
	// merged over; empty when none.
	baseKey   string
	baseIndex uint64
	at        time.Time
	// spec is the orchestration spec the rule was expanded from, and
	// versions the live versions per service it was expanded with.
	spec     *rule.Spec
	versions map[string][]string
	// pending lists the spec's services that had no instances when the
	// rule was expanded: the rule leaves them unconstrained until they
	// appear, which expands it again.
	pending []string
	// held lists per service the versions the expansion kept although
	// discovery did not list them (the expansion hold).
	held map[string][]string
}

// logSource names the origin in log lines.
func (p *provenance) logSource() string {
	s := p.key
	if s == "" {
		s = p.source
	}
	if p.spec != nil {
		s += " (orchestrated)"
	}
	return s
}

// ErrRuleRejected is returned by Ready when the rule source's document
// could not be read and no rule from it is in force: the error says which
// document and why.
var ErrRuleRejected = errors.New("balancer: rule document rejected; no rule in force")

// rejectedError returns ErrRuleRejected naming the last rejected document.
func (b *Balancer) rejectedError() error {
	rj := b.rejected.Load()
	if rj == nil {
		return ErrRuleRejected
	}
	what := rj.source
	if rj.key != "" {
		what = "key " + strconv.Quote(rj.key)
	}
	return fmt.Errorf("%w: %s (index %d): %s", ErrRuleRejected, what, rj.index, rj.err)
}

// rejection is a document that could not be put in force, for the debug
// view. The document itself is not kept: whatever was pasted into KV by
// mistake, secrets included, would be served to anyone who reaches the
// debug page. Its position, a short excerpt there and its hash say enough
// to find and fix it.
type rejection struct {
	at        time.Time
	source    string
	key       string
	index     uint64
	group     bool
	err       string
	line, col int    // the error's position, 1-based; 0 when unknown
	excerpt   string // a few cut lines around it
	sum       string // hex SHA-256 of the whole document
	size      int
}

type headerField struct {
	name  string   // canonical
	value []string // shared, read-only
}

func newActiveRule(r *rule.Rule, xml []byte, prov provenance, self *Identity) *activeRule {
	ar := &activeRule{rule: r, xml: xml, prov: prov, disco: newDiscoveryRoutes(&r.Discovery, self)}
	for t := range rule.NumTypes {
		ar.base.Set(t, r.Fixed(t)) // failover and blacklist values
	}
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

// SubscribeRule returns a channel that receives a value after each change
// of the rule in force (applied or cleared), and a function that ends the
// subscription. The channel has room for one value and the balancer never
// blocks on it: a slow subscriber sees one wake-up for several changes and
// reads Rule again. With Rule it makes the balancer a drain.RuleSource.
func (b *Balancer) SubscribeRule() (<-chan struct{}, func()) { return b.ruleSubs.Subscribe() }

// setRule publishes r (nil clears the rule), logs it and wakes the rule
// subscribers, unless r encodes to the same XML as the rule in force; then
// only the record of where the rule came from is updated.
func (b *Balancer) setRule(r *rule.Rule, xml []byte, prov provenance) {
	prov.at = b.o.now()
	if r == nil {
		if b.rule.Swap(nil) != nil {
			b.log.Info("rule cleared; plain load balancing", zap.String("source", prov.logSource()))
			b.ruleSubs.Notify()
		}
		return
	}
	if xml == nil {
		var err error
		if xml, err = rule.EncodeXML(r); err != nil {
			b.log.Warn("rule cannot be shown as XML", zap.Error(err))
		}
	}
	if cur := b.rule.Load(); cur != nil && xml != nil && bytes.Equal(cur.xml, xml) {
		if cur.prov.key != prov.key || cur.prov.index != prov.index || cur.prov.spec != prov.spec ||
			cur.prov.baseKey != prov.baseKey || cur.prov.baseIndex != prov.baseIndex ||
			cur.prov.source != prov.source || cur.prov.group != prov.group || !sameInventory(&cur.prov, &prov) {
			// Same rule, other origin: keep the rule (and when it came
			// into force), record the new origin.
			next := *cur
			prov.at = cur.prov.at
			next.prov = prov
			b.rule.Store(&next)
		}
		return
	}
	b.rule.Store(newActiveRule(r, xml, prov, &b.o.self))
	b.log.Info("rule applied", zap.String("source", prov.logSource()), zap.Uint64("index", prov.index), zap.ByteString("rule", xml))
	if len(r.Ignored) > 0 {
		b.log.Info("rule sections not used by graylane", zap.Strings("sections", r.Ignored))
	}
	for _, cs := range [][]rule.Condition{r.Release.BlueGreen, r.Release.Gray} {
		for i := range cs {
			if err := cs[i].Expression.Err(); err != nil {
				b.log.Warn("rule condition never holds: its expression does not compile",
					zap.String("condition", cs[i].ID), zap.String("expression", cs[i].Expression.String()), zap.Error(err))
			}
		}
	}
	b.checkVersions()
	b.ruleSubs.Notify()
}

// sameInventory reports whether two expansions saw the same versions.
func sameInventory(a, b *provenance) bool {
	return maps.EqualFunc(a.versions, b.versions, slices.Equal) &&
		maps.EqualFunc(a.held, b.held, slices.Equal) && slices.Equal(a.pending, b.pending)
}

// reject records a document that could not be put in force.
func (b *Balancer) reject(doc *discovery.RuleDoc, prov provenance, err error) {
	rj := &rejection{
		at: b.o.now(), source: prov.source, key: prov.key, index: prov.index, group: prov.group,
		err: cutMessage(err.Error()), size: len(doc.Data),
	}
	sum := sha256.Sum256(doc.Data)
	rj.sum = hex.EncodeToString(sum[:])
	var re *rule.Error
	if errors.As(err, &re) && re.Line > 0 {
		rj.line, rj.col = re.Line, re.Column
		rj.excerpt = excerpt(doc.Data, re.Line, re.Column)
	}
	b.rejected.Store(rj)
}

// cutMessage bounds an error message kept for the debug view: messages
// quote the values they reject, which could be a whole document.
func cutMessage(s string) string {
	const maxMessage = 400
	if len(s) <= maxMessage {
		return s
	}
	to := maxMessage
	for to > 0 && !utf8.RuneStart(s[to]) {
		to--
	}
	return s[:to] + "..."
}

// How much of a rejected document the debug view shows: the lines around
// the error's, each cut to a window around the error's column.
const (
	excerptBefore = 2  // lines before the error's
	excerptAfter  = 1  // lines after it
	excerptWidth  = 60 // bytes of each line
)

// excerpt returns the lines of data around line (1-based), numbered, each
// cut to excerptWidth bytes around col, with a caret under col on the
// error's line. It never returns more than a few hundred bytes, however
// long the document or its lines.
func excerpt(data []byte, line, col int) string {
	first := max(1, line-excerptBefore)
	// The window is the same on every line, so the lines stay aligned.
	from := 0
	if col > excerptWidth*3/4 {
		from = col - 1 - excerptWidth/2
	}
	var b strings.Builder
	n := 1
	for rest := data; n <= line+excerptAfter; n++ {
		text := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			text, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if n >= first {
			text = bytes.TrimSuffix(text, []byte("\r"))
			cut, lead := window(text, from)
			prefix := strconv.Itoa(n) + " | "
			b.WriteString(prefix)
			b.WriteString(cut)
			b.WriteByte('\n')
			if n == line && col > 0 {
				b.WriteString(strings.Repeat(" ", len(prefix)+lead+max(0, col-1-from)))
				b.WriteString("^\n")
			}
		}
		if rest == nil {
			break
		}
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// window returns the excerptWidth bytes of text from byte from (moved to
// rune boundaries), with "..." where it was cut, and how many bytes the
// leading mark takes.
func window(text []byte, from int) (string, int) {
	if from >= len(text) {
		if from > 0 && len(text) > 0 {
			return "...", 3
		}
		return "", 0
	}
	for from > 0 && !utf8.RuneStart(text[from]) {
		from--
	}
	to := min(len(text), from+excerptWidth)
	for to < len(text) && !utf8.RuneStart(text[to]) {
		to--
	}
	s, lead := string(text[from:to]), 0
	if from > 0 {
		s, lead = "..."+s, 3
	}
	if to < len(text) {
		s += "..."
	}
	return s, lead
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
	good := make(lastGood)
	apply := func() {
		doc := w.Current()
		if doc == last {
			return
		}
		last = doc
		if b.applyDoc(ctx, doc, f, good) {
			b.inForceOnce.Do(func() { close(b.ruleInForce) })
		}
	}
	ready := w.Ready()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ready:
			ready = nil // closed for good: once is enough
			apply()
			close(b.rulesReady)
		case <-changed:
			apply()
		case <-f.notify:
			f.orchestrate()
		}
	}
}

// lastGood holds, per KV key, the last rule that key's document held that
// parsed: a service rule and its group rule each keep their last good
// version, as Nepxion keeps its partial and global rules apart, so a bad
// write to one key does not stop the other's changes.
type lastGood map[string]*rule.Rule

// applyDoc parses one published document (with its Base, the group rule
// it is assembled over) and puts it in force, reporting whether it did.
// A document that does not parse is logged and recorded for the debug
// view; the rule in force does not change, unless the other document of
// the pair changed: then that one is assembled with the bad one's last
// good version.
func (b *Balancer) applyDoc(ctx context.Context, doc *discovery.RuleDoc, f *specFollower, good lastGood) bool {
	prov := docProvenance(doc)
	for key := range good {
		// A key that no longer holds a document has no last good rule.
		if key != doc.Key && (doc.Base == nil || key != doc.Base.Key) {
			delete(good, key)
		}
	}
	if doc.Data == nil {
		f.stop()
		b.setRule(nil, nil, prov)
		return true
	}
	r, spec, fresh, ok := b.parseDoc(doc, good)
	if !ok || !fresh && doc.Base == nil {
		return false // nothing new to put in force
	}
	if spec != nil {
		if doc.Base != nil {
			b.log.Warn("rule: the service key holds an orchestration spec; the group rule is not merged into it",
				zap.String("source", prov.logSource()), zap.String("group_key", doc.Base.Key))
		}
		f.start(ctx, spec, prov)
		b.waitWatches(ctx, spec.Services())
		f.orchestrate()
		return true
	}
	if doc.Base != nil {
		g, gspec, _, ok := b.parseDoc(doc.Base, good)
		switch {
		case !ok:
			return false
		case gspec != nil:
			b.log.Warn("rule: the group key holds an orchestration spec, which cannot be merged into a service rule; the service rule alone is in force",
				zap.String("source", prov.logSource()), zap.String("group_key", doc.Base.Key))
		default:
			r = rule.Merge(r, g)
			prov.baseKey, prov.baseIndex = doc.Base.Key, doc.Base.Index
		}
	}
	f.stop()
	b.setRule(r, nil, prov)
	return true
}

// parseDoc parses one document (fresh). One that does not parse is logged
// and recorded, and its key's last good rule stands in for it; ok is false
// when there is none.
func (b *Balancer) parseDoc(doc *discovery.RuleDoc, good lastGood) (r *rule.Rule, spec *rule.Spec, fresh, ok bool) {
	r, spec, err := rule.ParseDocument(doc.Data)
	if err == nil {
		if r != nil {
			good[doc.Key] = r
		} else {
			delete(good, doc.Key)
		}
		return r, spec, true, true
	}
	prov := docProvenance(doc)
	prev := good[doc.Key]
	b.log.Error("rule rejected; the previous rule stays in force",
		zap.String("source", prov.logSource()), zap.Uint64("index", doc.Index),
		zap.Bool("previous_kept", prev != nil), zap.Error(err))
	b.reject(doc, prov, err)
	return prev, nil, false, prev != nil
}

// docProvenance says where a document came from.
func docProvenance(doc *discovery.RuleDoc) provenance {
	prov := provenance{source: "static", key: doc.Key, index: doc.Index, group: doc.Group}
	if doc.Key != "" {
		prov.source = "kv"
	}
	return prov
}

// waitWatches waits, up to the ready wait, for the first discovery answers
// of services, so that a spec is not expanded against watches that have not
// answered yet (at start-up, or for a service the spec newly names).
func (b *Balancer) waitWatches(ctx context.Context, services []string) {
	if b.o.readyWait < 0 {
		return
	}
	t := time.NewTimer(b.o.readyWait)
	defer t.Stop()
	for _, name := range services {
		select {
		case <-b.reg.Watch(name).Ready():
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// specFollower keeps an orchestrated rule up to date with the versions of
// its services. It is used by the rule goroutine only, apart from the
// forwarders it starts and its hold timer, which only send on notify.
//
// A version that was part of the expansion stays in it for the expansion
// hold (WithExpansionHold) after its last instance leaves, with the
// earliest start time seen, so that a transient absence (instances
// re-registering one by one after an agent restart) never re-labels the
// sides: the old version stays route-0 while it is briefly missing. A
// version that appears joins at once. Every process still expands against
// its own view; a rule rendered once centrally and published as a rule is
// the source of truth for a fleet that must never mix.
type specFollower struct {
	b      *Balancer
	notify chan struct{}
	spec   *rule.Spec
	prov   provenance
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// kept holds the versions of the expansions so far through transient
	// absences; held is, per service, the versions it held at the last
	// expansion (to log what changes).
	kept rule.Hold
	held map[string][]string
	// stopTimer cancels the wake-up at the next hold end; nil when none.
	stopTimer func() bool
}

// start follows spec, replacing any spec followed before. The versions
// seen of the services it still names are kept: a spec edited while a
// version is briefly missing keeps it.
func (f *specFollower) start(ctx context.Context, spec *rule.Spec, prov provenance) {
	f.halt()
	f.kept.Retain(spec.Service)
	for name := range f.held {
		if !slices.Contains(spec.Service, name) {
			delete(f.held, name)
		}
	}
	prov.spec = spec
	prov.at = f.b.o.now()
	f.spec, f.prov = spec, prov
	f.b.following.Store(&prov)
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
	f.halt()
	f.kept.Reset()
	f.held = nil
	f.spec = nil
	f.b.orchestration.Store(nil)
	f.b.following.Store(nil)
}

// halt stops the forwarders and the hold timer.
func (f *specFollower) halt() {
	if f.cancel != nil {
		f.cancel()
		f.wg.Wait()
		f.cancel = nil
	}
	if f.stopTimer != nil {
		f.stopTimer()
		f.stopTimer = nil
	}
}

// hold adds to list, the instances discovery lists for service, one entry
// per version seen before that is absent for less than the hold, and one
// per version with the earliest start seen (so that SortTime keeps its
// order); see rule.Hold. It returns the longer list, the versions held, and
// when the first of them leaves (zero: none), and logs versions that start
// or end being held.
func (f *specFollower) hold(service string, list []rule.Instance, now time.Time) ([]rule.Instance, []string, time.Time) {
	d := f.b.o.expansionHold
	if d == 0 {
		d = DefaultExpansionHold
	}
	f.kept.D = d
	listed := func(v string) bool {
		return slices.ContainsFunc(list, func(in rule.Instance) bool {
			iv := strings.TrimSpace(in.Version)
			return iv == v || (iv == "" && v == rule.DefaultVersion)
		})
	}
	prev := f.held[service]
	var gone []string
	for _, v := range prev {
		if !listed(v) {
			gone = append(gone, v) // left unless still held below
		}
	}
	out, held, next := f.kept.Apply(service, list, now)
	for _, v := range held {
		if !slices.Contains(prev, v) {
			f.b.log.Info("version missing from discovery; kept in the expansion for the hold",
				zap.String("service", service), zap.String("version", v), zap.Duration("hold", d))
		}
	}
	for _, v := range gone {
		if !slices.Contains(held, v) {
			f.b.log.Info("version left the expansion after the hold",
				zap.String("service", service), zap.String("version", v), zap.Duration("hold", d))
		}
	}
	if len(held) > 0 {
		if f.held == nil {
			f.held = make(map[string][]string)
		}
		f.held[service] = held
	} else {
		delete(f.held, service)
	}
	return out, held, next
}

// orchestrate expands the followed spec with the current instances.
//
// A service without instances has nothing to route to, so the spec is
// expanded over the services that have some and leaves the others
// unconstrained; their first instances expand it again. Holding back the
// whole rule instead would leave every service unrouted at start-up, until
// the last one registers: a beta user could land on the old version of a
// service that is long up. Only when no listed service has an instance does
// the previous rule (or none) stay in force. Versions absent for less than
// the expansion hold count as present (see specFollower).
func (f *specFollower) orchestrate() {
	if f.spec == nil {
		return
	}
	now := f.b.o.now()
	inv := make(rule.Inventory, len(f.spec.Service))
	versions := make(map[string][]string, len(f.spec.Service))
	var held map[string][]string
	var present, pending []string
	var wake time.Time
	for _, name := range f.spec.Service {
		snap := f.b.reg.Watch(name).Snapshot()
		list := make([]rule.Instance, len(snap.Instances))
		for i := range snap.Instances {
			list[i] = rule.Instance{Version: snap.Instances[i].Version, Started: snap.Instances[i].Started}
		}
		list, h, end := f.hold(name, list, now)
		if !end.IsZero() && (wake.IsZero() || end.Before(wake)) {
			wake = end
		}
		if len(list) == 0 {
			pending = append(pending, name)
			continue
		}
		present = append(present, name)
		versions[name] = snap.Versions
		if len(h) > 0 {
			if held == nil {
				held = make(map[string][]string)
			}
			held[name] = h
		}
		inv[name] = list
	}
	if f.stopTimer != nil {
		f.stopTimer()
		f.stopTimer = nil
	}
	if !wake.IsZero() {
		// Expand again when the first held version's hold ends, even if
		// discovery stays quiet.
		f.stopTimer = f.b.o.afterFunc(wake.Sub(now), func() {
			select {
			case f.notify <- struct{}{}:
			default:
			}
		})
	}
	spec := f.spec
	if len(pending) > 0 && len(present) > 0 {
		partial := *f.spec
		partial.Service = present
		spec = &partial
	}
	r, err := rule.Orchestrate(spec, inv)
	if err != nil {
		f.b.log.Warn("orchestration failed; the previous rule stays in force",
			zap.String("source", f.prov.logSource()), zap.Error(err))
		f.b.orchestration.Store(&rejection{
			at: f.b.o.now(), source: f.prov.source, key: f.prov.key, index: f.prov.index,
			group: f.prov.group, err: err.Error(),
		})
		return
	}
	if len(pending) > 0 {
		f.b.log.Warn("spec expanded without services that have no instances yet; they are unconstrained until they appear",
			zap.String("source", f.prov.logSource()), zap.Strings("services", pending))
	}
	f.b.orchestration.Store(nil)
	prov := f.prov
	prov.versions = versions
	prov.held = held
	prov.pending = pending
	f.b.setRule(r, nil, prov)
}

// namedVersions returns the versions the rule routes service to: the
// alternatives of the <strategy> version and version-weight values and of
// every version and version-weight route (weights of 0 left out; failover
// values are fallbacks, not routes), each once, in the rule's order.
func namedVersions(r *rule.Rule, service string) []string {
	var out []string
	add := func(alt string) {
		if alt = strings.TrimSpace(alt); alt != "" && !slices.Contains(out, alt) {
			out = append(out, alt)
		}
	}
	read := func(v rule.Value, weighted bool) {
		s, ok := v.For(service)
		if !ok {
			return
		}
		if !weighted {
			for alt := range strings.SplitSeq(s, ";") {
				add(alt)
			}
			return
		}
		ws, err := rule.ParseWeights(s)
		if err != nil {
			return
		}
		for _, w := range ws {
			if w.Weight > 0 {
				add(w.Key)
			}
		}
	}
	read(r.Strategy.Version, false)
	read(r.Strategy.VersionWeight, true)
	for i := range r.Release.Routes {
		switch rt := &r.Release.Routes[i]; rt.Type {
		case rule.TypeVersion:
			read(rt.Value, false)
		case rule.TypeVersionWeight:
			read(rt.Value, true)
		}
	}
	return out
}

// unrunVersions returns, per watched service that has instances, the
// versions ar routes it to that none of them runs (an alternative with
// wildcards counts as run when it matches a live version), or nil. Services
// without instances are left out: their picks fail and say so.
func (b *Balancer) unrunVersions(ar *activeRule) map[string][]string {
	if ar == nil {
		return nil
	}
	var out map[string][]string
	check := func(name string, w *discovery.Watch) {
		if _, done := out[name]; done || !isClosed(w.Ready()) {
			return
		}
		snap := w.Snapshot()
		if len(snap.Instances) == 0 {
			return
		}
		for _, v := range namedVersions(ar.rule, name) {
			m := pattern.Compile(v)
			if slices.ContainsFunc(snap.Versions, m.Match) {
				continue
			}
			if out == nil {
				out = make(map[string][]string)
			}
			out[name] = append(out[name], v)
		}
		if _, ok := out[name]; !ok && out != nil {
			out[name] = nil // checked: nothing missing
		}
	}
	for name, svc := range *b.services.Load() {
		check(name, svc.watch)
	}
	if p := b.following.Load(); p != nil {
		for _, name := range p.spec.Services() {
			check(name, b.reg.Watch(name))
		}
	}
	maps.DeleteFunc(out, func(_ string, vs []string) bool { return len(vs) == 0 })
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkVersions warns once when the versions the rule in force routes to
// that no instance runs change (a rule applied, or a watched service's
// versions changed), and says when there are none any more.
func (b *Balancer) checkVersions() {
	// Under the lock from reading the rule on, so that a check that read
	// an older state never reports after one that read a newer.
	b.unrunMu.Lock()
	defer b.unrunMu.Unlock()
	ar := b.rule.Load()
	missing := b.unrunVersions(ar)
	key := fmt.Sprint(missing) // maps print sorted by key
	if key == b.unrunLast {
		return
	}
	prev := b.unrunLast
	b.unrunLast = key
	switch {
	case len(missing) > 0:
		b.log.Warn("the rule routes to versions no instance runs; requests routed there fail or fail over",
			zap.String("source", ar.prov.logSource()), zap.Any("versions", missing))
	case prev != "" && prev != "map[]" && ar != nil:
		b.log.Info("every version the rule routes to runs again", zap.String("source", ar.prov.logSource()))
	}
}

// discoveryRoutes is the rule's <discovery> section resolved for the
// balancer's own identity (the consumer): per provider, the values of the
// route types rule.TypeDiscoveryVersion, TypeDiscoveryVersionWeight,
// TypeDiscoveryRegionWeight, TypeDiscoveryBlacklist (or
// TypeDiscoveryWhitelist) and TypeDiscoveryRegion, computed once per rule
// so that picks only look them up.
type discoveryRoutes struct {
	named map[string]*discoveryValues // by provider, as the rule spells it
	other *discoveryValues            // providers no entry names; nil when none applies
}

type discoveryValues [6]rule.Value

var discoveryTypes = [6]rule.RouteType{rule.TypeDiscoveryVersion, rule.TypeDiscoveryVersionWeight, rule.TypeDiscoveryRegionWeight,
	rule.TypeDiscoveryBlacklist, rule.TypeDiscoveryWhitelist, rule.TypeDiscoveryRegion}

func newDiscoveryRoutes(d *rule.Discovery, self *Identity) *discoveryRoutes {
	if d.IsZero() {
		return nil
	}
	resolve := func(provider string) *discoveryValues {
		v, vw, rw := d.For(self.Service, self.Version, provider)
		hosts, white := d.HostsFor(provider)
		regions := d.RegionsFor(self.Service, self.Region, provider)
		if v == "" && vw == "" && rw == "" && hosts == "" && regions == "" {
			return nil
		}
		dv := &discoveryValues{rule.PlainValue(v), rule.PlainValue(vw), rule.PlainValue(rw), {}, {}, rule.PlainValue(regions)}
		if white {
			dv[4] = rule.PlainValue(hosts)
		} else {
			dv[3] = rule.PlainValue(hosts)
		}
		return dv
	}
	dr := &discoveryRoutes{named: make(map[string]*discoveryValues)}
	for _, v := range d.Versions {
		dr.named[v.Provider] = resolve(v.Provider)
	}
	for _, w := range d.Weights {
		dr.named[w.Provider] = resolve(w.Provider)
	}
	for _, r := range d.Regions {
		dr.named[r.Provider] = resolve(r.Provider)
	}
	if d.Hosts != nil {
		for _, h := range d.Hosts.Services {
			dr.named[h.Service] = resolve(h.Service)
		}
	}
	// A provider no entry names gets the weights and host prefixes for
	// every provider; the empty name stands for it (no provider is called
	// "").
	dr.other = resolve("")
	if dr.other == nil {
		all := true
		for _, v := range dr.named {
			all = all && v == nil
		}
		if all {
			return nil
		}
	}
	return dr
}

// forService returns the values for provider service, nil when the
// section does not constrain it. Providers match without regard to case,
// as in Nepxion.
func (dr *discoveryRoutes) forService(service string) *discoveryValues {
	if v, ok := dr.named[service]; ok {
		return v
	}
	for name, v := range dr.named {
		if strings.EqualFold(name, service) {
			return v
		}
	}
	return dr.other
}

// WithRuleLocal returns r with the values the rule in force sets for one
// provider service locally, for this balancer's identity (WithIdentity):
// the host, version and region filters and the weights of its <discovery>
// section, which never travel as headers. They are written to scratch, a
// copy of r; r itself (nil included) comes back when the rule sets none.
// Picks through the balancer apply them already; a picker outside it
// (grpcroute's) calls this.
func (b *Balancer) WithRuleLocal(service string, r *Route, scratch *Route) *Route {
	return b.withDiscovery(service, r, scratch)
}

// Switches returns the balancer's failover switches (WithSwitches); the
// zero Switches for a nil *Balancer.
func (b *Balancer) Switches() Switches {
	if b == nil {
		return Switches{}
	}
	return b.o.switches
}

// withDiscovery returns r with the rule's <discovery> values for service
// set, in scratch; r itself when the rule in force has none for it.
func (b *Balancer) withDiscovery(service string, r *Route, scratch *Route) *Route {
	if b == nil {
		return r
	}
	ar := b.rule.Load()
	if ar == nil || ar.disco == nil {
		return r
	}
	dv := ar.disco.forService(service)
	if dv == nil {
		return r
	}
	if r != nil {
		*scratch = *r
	}
	for i, t := range discoveryTypes {
		scratch.Set(t, dv[i])
	}
	return scratch
}
