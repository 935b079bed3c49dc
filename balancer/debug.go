package balancer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// DebugState is what the balancer knows at one moment, for people and
// tools: the rule in force and where it came from, the last document that
// was rejected, and every service it watches with its instances. Debug
// returns it; DebugHandler serves it as JSON and HTML.
type DebugState struct {
	// Time is when the state was read.
	Time time.Time `json:"time"`
	// Identity is the balancer's own identity (WithIdentity); nil when
	// anonymous.
	Identity *DebugIdentity `json:"identity,omitempty"`
	// Policy, Failover, Switches and Entry echo the balancer's
	// configuration; Switches lists the WithSwitches behaviours turned on.
	Policy      string   `json:"policy"`
	Failover    string   `json:"failover"`
	Switches    []string `json:"switches,omitempty"`
	Entry       bool     `json:"entry"`
	TrustedEdge bool     `json:"trustedEdge"`
	// RemovalGrace is the WithRemovalGrace setting; 0 when off.
	RemovalGrace Duration `json:"removalGrace"`
	// Rule is the rule in force; nil means plain load balancing.
	Rule *DebugRule `json:"rule"`
	// Spec is the orchestration spec being followed, if any. It is the
	// origin of Rule unless Orchestration reports why it cannot be
	// expanded yet.
	Spec *DebugSpec `json:"spec,omitempty"`
	// Orchestration is the current failure to expand Spec (a listed
	// service without instances, say); nil when the expansion succeeded.
	Orchestration *DebugRejection `json:"orchestrationError,omitempty"`
	// Rejected says why the last published document that did not parse
	// was rejected.
	Rejected *DebugRejection `json:"rejected,omitempty"`
	// Services lists the watched services by name.
	Services []DebugService `json:"services"`
	// Traffic is the last minute's figures per version, client and server
	// side (with WithMeterProvider only).
	Traffic []DebugTraffic `json:"traffic,omitempty"`
	// Sections are the WithDebugSection sections. DebugHandler fills them
	// for each request of the page; Debug leaves them out (it never
	// blocks).
	Sections []DebugSection `json:"sections,omitempty"`
}

// DebugIdentity is the balancer's own identity (see [pick.Identity]).
type DebugIdentity struct {
	Service string `json:"service,omitempty"`
	ID      string `json:"id,omitempty"`
	AppID   string `json:"appId,omitempty"`
	Type    string `json:"type,omitempty"`
	Address string `json:"address,omitempty"`
	Version string `json:"version,omitempty"`
	Region  string `json:"region,omitempty"`
	Env     string `json:"env,omitempty"`
	Zone    string `json:"zone,omitempty"`
	Group   string `json:"group,omitempty"`
}

// DebugSection is one WithDebugSection section as a request of the page
// read it: its value as JSON, or why it could not be read.
type DebugSection struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

// DebugSectionTimeout bounds the reads of the WithDebugSection sections of
// one request of the debug page, all together.
const DebugSectionTimeout = 2 * time.Second

type debugSection struct {
	name string
	fn   func(context.Context) (any, error)
}

// WithDebugSection adds a section to the page DebugHandler serves: each
// request of the page calls fn (with a context that ends within
// DebugSectionTimeout, or with the request) and shows its value, encoded
// as JSON, under name, or the error fn returned. A nil value with a nil
// error leaves the section out. fn runs on page requests only: it may
// read a remote store (one consistent read, say) without any watch
// running the rest of the time. Package rollout's DebugSection shows a
// rollout's plan, step, next action and checks this way. A nil fn is
// ignored.
func WithDebugSection(name string, fn func(ctx context.Context) (any, error)) Option {
	return optionFunc(func(o *options) {
		if fn != nil {
			o.debugSections = append(o.debugSections, debugSection{name, fn})
		}
	})
}

// sections reads the WithDebugSection sections.
func (b *Balancer) sections(ctx context.Context) []DebugSection {
	if len(b.o.debugSections) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DebugSectionTimeout)
	defer cancel()
	var out []DebugSection
	for _, s := range b.o.debugSections {
		v, err := s.fn(ctx)
		ds := DebugSection{Name: s.name}
		switch {
		case err != nil:
			ds.Error = err.Error()
		case v == nil:
			continue
		default:
			// Not escaped for HTML: the page's template escapes the text.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				ds.Error = "cannot be shown: " + err.Error()
			} else {
				ds.Value = bytes.TrimRight(buf.Bytes(), "\n")
			}
		}
		out = append(out, ds)
	}
	return out
}

// debugNode is a section's JSON value laid out for the page: an object
// as a definition list in key order, an array of objects as a table, any
// other array as a list, a scalar as text; Pre holds a value that did not
// decode, as indented text.
type debugNode struct {
	Kind   string // "text", "pre", "object", "table" or "list"
	Text   string
	Fields []debugNodeField
	Cols   []string
	Rows   [][]*debugNode // by Cols; nil where a row lacks the key
	Items  []*debugNode
}

type debugNodeField struct {
	Key  string
	Node *debugNode
}

// maxDebugDepth bounds the nesting the page lays out.
const maxDebugDepth = 16

// node lays the section's value out for the page.
func (s DebugSection) node() *debugNode {
	dec := json.NewDecoder(bytes.NewReader(s.Value))
	dec.UseNumber()
	n, err := decodeNode(dec, 0)
	if err != nil {
		var b bytes.Buffer
		if json.Indent(&b, s.Value, "", "  ") != nil {
			b.Reset()
			b.Write(s.Value)
		}
		return &debugNode{Kind: "pre", Text: b.String()}
	}
	return n
}

func decodeNode(dec *json.Decoder, depth int) (*debugNode, error) {
	if depth > maxDebugDepth {
		return nil, errors.New("nested too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case string:
		return &debugNode{Kind: "text", Text: v}, nil
	case json.Number:
		return &debugNode{Kind: "text", Text: v.String()}, nil
	case bool:
		return &debugNode{Kind: "text", Text: strconv.FormatBool(v)}, nil
	case nil:
		return &debugNode{Kind: "text", Text: "-"}, nil
	case json.Delim:
		n := &debugNode{Kind: "object"}
		if v == '[' {
			n.Kind = "list"
		}
		for dec.More() {
			if n.Kind == "object" {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				child, err := decodeNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.Fields = append(n.Fields, debugNodeField{key, child})
				continue
			}
			child, err := decodeNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, child)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		if n.Kind == "list" {
			n.tabulate()
		}
		return n, nil
	}
	return nil, errors.New("unexpected token")
}

// tabulate makes a list of objects a table, its columns the keys in the
// order they first appear.
func (n *debugNode) tabulate() {
	if len(n.Items) == 0 {
		return
	}
	col := map[string]int{}
	for _, it := range n.Items {
		if it.Kind != "object" {
			return
		}
		for _, f := range it.Fields {
			if _, ok := col[f.Key]; !ok {
				col[f.Key] = len(n.Cols)
				n.Cols = append(n.Cols, f.Key)
			}
		}
	}
	for _, it := range n.Items {
		row := make([]*debugNode, len(n.Cols))
		for _, f := range it.Fields {
			row[col[f.Key]] = f.Node
		}
		n.Rows = append(n.Rows, row)
	}
	n.Kind, n.Items = "table", nil
}

func debugIdentity(id Identity) *DebugIdentity {
	if id.IsZero() {
		return nil
	}
	return &DebugIdentity{Service: id.Service, ID: id.ID, AppID: id.AppID, Type: id.Type, Address: id.Address,
		Version: id.Version, Region: id.Region, Env: id.Env, Zone: id.Zone, Group: id.Group}
}

// switchNames lists the switches turned on.
func switchNames(s Switches) []string {
	var out []string
	for _, sw := range []struct {
		on   bool
		name string
	}{
		{s.VersionPrefer, "versionPrefer"}, {s.VersionFailover, "versionFailover"},
		{s.VersionFailoverStable, "versionFailoverStable"}, {s.RegionTransfer, "regionTransfer"},
		{s.RegionFailover, "regionFailover"}, {s.EnvFailover, "envFailover"},
		{s.ZoneAffinity, "zoneAffinity"}, {s.ZoneFailover, "zoneFailover"},
		{s.RegionAffinity, "regionAffinity"}, {s.AddressFailover, "addressFailover"},
		{s.GroupIsolation, "groupIsolation"},
	} {
		if sw.on {
			out = append(out, sw.name)
		}
	}
	return out
}

// DebugRule is the rule in force and its origin.
type DebugRule struct {
	// XML is the rule in Nepxion's XML form.
	XML string `json:"xml"`
	// Origin says where the rule came from and when it was applied.
	Origin DebugOrigin `json:"origin"`
	// Spec is the orchestration spec (YAML) the rule was expanded from,
	// and Versions the live versions per service it was expanded with;
	// both empty for a rule published as such.
	Spec     string              `json:"spec,omitempty"`
	Versions map[string][]string `json:"versions,omitempty"`
	// Pending lists the spec's services that had no instances when it was
	// expanded; the rule leaves them unconstrained until they appear.
	Pending []string `json:"pending,omitempty"`
	// Held lists per service the versions the expansion kept although no
	// instance runs them right now: they left discovery less than the
	// expansion hold ago (see WithExpansionHold).
	Held map[string][]string `json:"held,omitempty"`
	// Unrun lists per watched service the versions the rule routes to
	// that none of its instances runs: requests routed there fail (or
	// fail over). Services without any instance are left out.
	Unrun map[string][]string `json:"unrunVersions,omitempty"`
	// Ignored lists Nepxion sections that graylane accepts and does not
	// use.
	Ignored []string `json:"ignored,omitempty"`
}

// DebugOrigin says where a document came from.
type DebugOrigin struct {
	// Source is "kv" (a Consul KV key), "static" (a static rule watch) or
	// "fixed" (WithRule).
	Source string `json:"source"`
	// Key is the KV key; Group reports the group-wide key.
	Key   string `json:"key,omitempty"`
	Group bool   `json:"group,omitempty"`
	// Index is the KV pair's ModifyIndex (a static watch's change count).
	Index uint64 `json:"index,omitempty"`
	// BaseKey and BaseIndex name the group-wide document a service rule
	// was merged over, section by section, when both keys hold one.
	BaseKey   string `json:"base_key,omitempty"`
	BaseIndex uint64 `json:"base_index,omitempty"`
	// At is when the balancer applied (or rejected) the document.
	At time.Time `json:"at"`
}

// DebugSpec is the orchestration spec being followed; Origin.At is when
// its document arrived.
type DebugSpec struct {
	YAML     string      `json:"yaml"`
	Origin   DebugOrigin `json:"origin"`
	Services []string    `json:"services"`
}

// DebugRejection is a document that could not be put in force, and why.
// The document itself is not shown: whatever was pasted into KV by
// mistake, secrets included, would be served to anyone who reaches the
// page. Its hash identifies it (compare with sha256sum of the KV value).
type DebugRejection struct {
	Origin DebugOrigin `json:"origin"`
	// Error is the parser's (or the orchestration's) message.
	Error string `json:"error"`
	// Line and Column locate the error in the document, 1-based; 0 when
	// the parser gave no position.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Excerpt is a few numbered lines of the document around Line, each
	// cut to a few dozen bytes around Column, with a caret under it;
	// empty without a position.
	Excerpt string `json:"excerpt,omitempty"`
	// SHA256 is the hex SHA-256 of the whole document and Size its length
	// in bytes; both empty for an orchestration failure.
	SHA256 string `json:"sha256,omitempty"`
	Size   int    `json:"size,omitempty"`
}

// DebugService is one watched service.
type DebugService struct {
	Name string `json:"name"`
	// Picked reports that the balancer has picked for the service; a
	// service only a spec names is watched but has no call records.
	Picked bool `json:"picked"`
	// Ready reports that discovery has answered for the service.
	Ready bool `json:"ready"`
	// Error is why discovery's last read of the service failed (a Consul
	// agent refusing connections over its limit, say); empty when it
	// succeeded. Without Ready, the service is not being served.
	Error string `json:"error,omitempty"`
	// Index is discovery's revision of the instance list.
	Index uint64 `json:"index"`
	// Versions lists the versions of the listed instances, in version
	// order.
	Versions  []string        `json:"versions"`
	Instances []DebugInstance `json:"instances"`
	// Lingering are instances discovery no longer lists that still take
	// requests no listed instance can (see WithRemovalGrace).
	Lingering []DebugInstance `json:"lingering,omitempty"`
	// Breakers are the circuit breakers of the version sets called, by
	// version (see BreakerPolicy).
	Breakers []DebugBreaker `json:"breakers,omitempty"`
}

// DebugInstance is one instance and its call records.
type DebugInstance struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Version string `json:"version"`
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	Env     string `json:"env,omitempty"`
	Weight  int    `json:"weight"`
	// InFlight counts calls started and not yet ended. Counting costs two
	// atomic writes per call, so the balancer counts only once something
	// reads the counts: from the start with LeastInFlight, else from the
	// first call of Debug or DebugHandler on (mount the handler at
	// start-up to see every call); calls already under way then are not
	// counted. Failures counts the failed calls in a row, always.
	InFlight int64 `json:"inFlight"`
	Failures int   `json:"failures"`
	// EjectedUntil is set while passive health checking leaves the
	// instance out.
	EjectedUntil *time.Time `json:"ejectedUntil,omitempty"`
	// LingerUntil is when a lingering instance stops taking requests.
	LingerUntil *time.Time `json:"lingerUntil,omitempty"`
}

// Duration is a time.Duration that encodes to JSON as text ("5s").
type Duration time.Duration

// MarshalText encodes d as time.Duration's String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String returns d as time.Duration's String does.
func (d Duration) String() string { return time.Duration(d).String() }

// Debug returns the balancer's current state. It reads published snapshots
// and counters only: it never blocks a pick, and a pick never waits for it.
// Its first call turns on the counting of calls in flight (see
// DebugInstance.InFlight).
func (b *Balancer) Debug() DebugState {
	b.countInFlight()
	now := b.o.now()
	st := DebugState{
		Time:         now,
		Identity:     debugIdentity(b.o.self),
		Policy:       b.o.policy.String(),
		Failover:     b.o.failover.String(),
		Switches:     switchNames(b.o.switches),
		Entry:        b.o.entry,
		TrustedEdge:  b.o.trustedEdge,
		RemovalGrace: Duration(b.o.removalGrace),
		Services:     []DebugService{},
	}
	if ar := b.rule.Load(); ar != nil {
		dr := &DebugRule{XML: string(ar.xml), Origin: ar.prov.origin(), Ignored: ar.rule.Ignored}
		if ar.prov.spec != nil {
			dr.Spec = specYAML(ar.prov.spec)
			dr.Versions = ar.prov.versions
			dr.Pending = ar.prov.pending
			dr.Held = ar.prov.held
		}
		dr.Unrun = b.unrunVersions(ar)
		st.Rule = dr
	}
	if p := b.following.Load(); p != nil {
		st.Spec = &DebugSpec{YAML: specYAML(p.spec), Origin: p.origin(), Services: p.spec.Services()}
	}
	if rj := b.orchestration.Load(); rj != nil {
		st.Orchestration = rj.debug()
	}
	if rj := b.rejected.Load(); rj != nil {
		st.Rejected = rj.debug()
	}

	services := *b.services.Load()
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	if st.Spec != nil {
		for _, name := range st.Spec.Services {
			if _, ok := services[name]; !ok {
				names = append(names, name)
			}
		}
	}
	if b.tel != nil && b.tel.traffic != nil {
		st.Traffic = b.tel.traffic.snapshot()
	}
	names = b.breakerServices(names)
	slices.Sort(names)
	nowNS := now.UnixNano()
	for _, name := range names {
		if svc, ok := services[name]; ok {
			ds := svc.debug(nowNS)
			ds.Breakers = b.debugBreakers(name)
			st.Services = append(st.Services, ds)
			continue
		}
		w := b.reg.Watch(name)
		snap := w.Snapshot()
		ds := DebugService{Name: name, Ready: isClosed(w.Ready()), Index: snap.Index, Versions: snap.Versions, Error: errText(w.Err())}
		ds.Breakers = b.debugBreakers(name)
		for i := range snap.Instances {
			ds.Instances = append(ds.Instances, debugInstance(&snap.Instances[i], nil, nowNS))
		}
		st.Services = append(st.Services, ds)
	}
	return st
}

func (p *provenance) origin() DebugOrigin {
	return DebugOrigin{Source: p.source, Key: p.key, Group: p.group, Index: p.index,
		BaseKey: p.baseKey, BaseIndex: p.baseIndex, At: p.at}
}

func (rj *rejection) debug() *DebugRejection {
	return &DebugRejection{
		Origin: DebugOrigin{Source: rj.source, Key: rj.key, Group: rj.group, Index: rj.index, At: rj.at},
		Error:  rj.err,
		Line:   rj.line, Column: rj.col, Excerpt: rj.excerpt,
		SHA256: rj.sum, Size: rj.size,
	}
}

func specYAML(s *rule.Spec) string {
	y, err := rule.EncodeSpecYAML(s)
	if err != nil {
		return "(cannot be shown: " + err.Error() + ")"
	}
	return string(y)
}

// debug reads one service's live snapshot and its call records.
func (s *service) debug(now int64) DebugService {
	snap := s.watch.Snapshot()
	ds := DebugService{Name: s.name, Picked: true, Ready: isClosed(s.watch.Ready()), Index: snap.Index, Versions: snap.Versions, Error: errText(s.watch.Err())}
	ps := s.cur.Load()
	var states map[string]*InstanceState
	if ps != nil && ps.sel.Len() > 0 && ps.sel.State(0) != nil {
		states = make(map[string]*InstanceState, ps.sel.Len())
		for i := range ps.sel.Len() {
			states[ps.sel.Instance(i).ID] = ps.sel.State(i)
		}
	}
	ds.Instances = make([]DebugInstance, 0, len(snap.Instances))
	for i := range snap.Instances {
		ds.Instances = append(ds.Instances, debugInstance(&snap.Instances[i], states[snap.Instances[i].ID], now))
	}
	if ps != nil && ps.gone != nil {
		for i, until := range ps.gone.until {
			if until <= now {
				continue
			}
			in := ps.gone.sel.Instance(i)
			di := debugInstance(in, nil, now)
			t := time.Unix(0, until)
			di.LingerUntil = &t
			ds.Lingering = append(ds.Lingering, di)
		}
	}
	return ds
}

func debugInstance(in *discovery.Instance, st *InstanceState, now int64) DebugInstance {
	di := DebugInstance{
		ID: in.ID, Address: in.Address, Port: in.Port, Version: in.Version,
		Region: in.Region, Zone: in.Zone, Env: in.Env, Weight: in.EffectiveWeight(),
	}
	if st != nil {
		di.InFlight = st.InFlight()
		di.Failures = st.Failures()
		if until := st.EjectedUntil(); until > now {
			t := time.Unix(0, until)
			di.EjectedUntil = &t
		}
	}
	return di
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// DebugHandler returns an http.Handler that shows Debug's state: JSON for
// a request with ?format=json or an Accept header preferring
// application/json, otherwise a plain HTML page (no scripts, no external
// resources). It answers GET and HEAD only. Mount it where only operators
// can reach it: it shows the rule, instance addresses and a few cut lines
// of rejected documents around their errors. Calling it turns on the
// counting of calls in flight (see DebugInstance.InFlight).
func (b *Balancer) DebugHandler() http.Handler {
	b.countInFlight()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "balancer debug: method "+r.Method+" not allowed", http.StatusMethodNotAllowed)
			return
		}
		asJSON, err := wantsJSON(r)
		if err != nil {
			http.Error(w, "balancer debug: "+err.Error(), http.StatusBadRequest)
			return
		}
		st := b.Debug()
		st.Sections = b.sections(r.Context())
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Vary", "Accept")
		if asJSON {
			h.Set("Content-Type", "application/json; charset=utf-8")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
				b.log.Debug("debug view not sent")
			}
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := debugPage.Execute(w, st); err != nil {
			b.log.Debug("debug page not sent")
		}
	})
}

// wantsJSON reads the format parameter, then the Accept header: JSON when
// it ranks application/json above text/html.
func wantsJSON(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		return true, nil
	case "html":
		return false, nil
	case "":
	default:
		return false, &formatError{f}
	}
	var jsonQ, htmlQ float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "application/json":
			jsonQ = max(jsonQ, q)
		case "text/html":
			htmlQ = max(htmlQ, q)
		}
	}
	return jsonQ > htmlQ, nil
}

type formatError struct{ format string }

func (e *formatError) Error() string {
	return "unknown format " + strconv.Quote(e.format) + " (want json or html)"
}

var debugPage = template.Must(template.New("debug").Funcs(template.FuncMap{
	"when": func(t time.Time, now time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02 15:04:05.000 MST") + " (" + now.Sub(t).Round(time.Millisecond).String() + " ago)"
	},
	"until": func(t *time.Time, now time.Time) string {
		return t.Format("15:04:05.000") + " (in " + t.Sub(now).Round(time.Millisecond).String() + ")"
	},
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"node":    func(s DebugSection) *debugNode { return s.node() },
	"percent": func(f float64) float64 { return 100 * f },
}).Parse(debugHTML))

const debugHTML = `{{define "node"}}{{if eq .Kind "object"}}<dl>
{{range .Fields}}<dt>{{.Key}}</dt><dd>{{template "node" .Node}}</dd>
{{end}}</dl>{{else if eq .Kind "table"}}<table>
<thead><tr>{{range .Cols}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td>{{with .}}{{template "node" .}}{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table>{{else if eq .Kind "list"}}{{range $i, $x := .Items}}{{if $i}}, {{end}}{{template "node" $x}}{{end}}{{else if eq .Kind "pre"}}<pre>{{.Text}}</pre>{{else}}{{.Text}}{{end}}{{end}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>graylane balancer</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #bbb; padding: .2em .6em; text-align: left; }
th { background: #eee; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .6em; overflow-x: auto; }
.bad { color: #a00; } .warn { background: #fff2cc; } .muted { color: #777; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
</style>
</head>
<body>
<h1>graylane balancer</h1>
<p class="muted">State at {{.Time.Format "2006-01-02 15:04:05.000 MST"}}. <a href="?format=json">JSON</a></p>
<dl>
<dt>Policy</dt><dd>{{.Policy}}</dd>
<dt>Failover</dt><dd>{{.Failover}}{{if .Switches}}; switches on: <span id="switches">{{join .Switches}}</span>{{end}}</dd>
{{with .Identity}}<dt>Identity</dt><dd id="identity">{{.Service}}{{if .ID}} id {{.ID}}{{end}}{{if .Version}} version {{.Version}}{{end}}{{if .Address}} at {{.Address}}{{end}}{{if .Region}} region {{.Region}}{{end}}{{if .Zone}} zone {{.Zone}}{{end}}{{if .Env}} env {{.Env}}{{end}}{{if .Group}} group {{.Group}}{{end}}</dd>{{end}}
<dt>Entry</dt><dd>{{.Entry}}{{if .TrustedEdge}} (trusted edge){{end}}</dd>
<dt>Removal grace</dt><dd>{{.RemovalGrace}}</dd>
</dl>

<h2 id="rule">Rule in force</h2>
{{with .Rule}}
<dl>
<dt>Source</dt><dd>{{.Origin.Source}}{{if .Origin.Key}} key <code>{{.Origin.Key}}</code>{{if .Origin.Group}} (group key){{end}}{{end}}</dd>
{{if .Origin.Index}}<dt>Index</dt><dd>{{.Origin.Index}}</dd>{{end}}
{{if .Origin.BaseKey}}<dt>Merged over</dt><dd>group key <code>{{.Origin.BaseKey}}</code> index {{.Origin.BaseIndex}}</dd>{{end}}
<dt>Applied</dt><dd>{{when .Origin.At $.Time}}</dd>
{{if .Versions}}<dt>Orchestrated with</dt><dd>{{range $svc, $vs := .Versions}}{{$svc}}: {{join $vs}}<br>{{end}}</dd>{{end}}
{{if .Held}}<dt>Kept though absent</dt><dd class="warn">{{range $svc, $vs := .Held}}{{$svc}}: {{join $vs}}<br>{{end}}(left discovery less than the expansion hold ago)</dd>{{end}}
{{if .Unrun}}<dt>Routes to versions no instance runs</dt><dd class="bad" id="rule-unrun">{{range $svc, $vs := .Unrun}}{{$svc}}: {{join $vs}}<br>{{end}}</dd>{{end}}
{{if .Pending}}<dt>Not running yet</dt><dd class="bad">{{join .Pending}} (unconstrained until they appear)</dd>{{end}}
{{if .Ignored}}<dt>Not used</dt><dd>{{join .Ignored}}</dd>{{end}}
</dl>
<pre id="rule-xml">{{.XML}}</pre>
{{if .Spec}}<h3>Expanded from the spec</h3>
<pre id="rule-spec">{{.Spec}}</pre>{{end}}
{{else}}
<p>No rule: plain load balancing.</p>
{{end}}
{{if .Traffic}}
<h3 id="traffic">Traffic by version, last minute</h3>
<table>
<thead><tr><th>Side</th><th>Service</th><th>Version</th><th>Requests</th><th>Rate</th><th>Errors</th><th>Error ratio</th><th>p50</th><th>p99</th></tr></thead>
<tbody>
{{range .Traffic}}<tr{{if .Errors}} class="warn"{{end}}><td>{{.Side}}</td><td>{{.Service}}</td><td>{{.Version}}</td><td>{{.Requests}}</td><td>{{printf "%.2f/s" .Rate}}</td><td>{{.Errors}}</td><td>{{printf "%.1f%%" (percent .ErrorRatio)}}</td><td>&le; {{.P50}}</td><td>&le; {{.P99}}</td></tr>
{{end}}</tbody>
</table>
{{end}}

{{range .Sections}}
<h2 id="section-{{.Name}}">{{.Name}}</h2>
{{if .Error}}<p class="bad">Cannot be read: {{.Error}}</p>{{else}}{{template "node" node .}}{{end}}
{{end}}

{{with .Orchestration}}
<h2 id="orchestration" class="bad">Spec not expanded</h2>
<p class="warn">{{.Error}} (since {{when .Origin.At $.Time}}). The rule above stays in force.</p>
{{end}}
{{if and .Spec (not .Rule)}}<h3>Spec followed</h3><pre>{{.Spec.YAML}}</pre>{{end}}

<h2 id="rejected">Last rejected document</h2>
{{with .Rejected}}
<dl>
<dt>Source</dt><dd>{{.Origin.Source}}{{if .Origin.Key}} key <code>{{.Origin.Key}}</code>{{end}}</dd>
{{if .Origin.Index}}<dt>Index</dt><dd>{{.Origin.Index}}</dd>{{end}}
<dt>Rejected</dt><dd>{{when .Origin.At $.Time}}</dd>
<dt>Why</dt><dd class="bad" id="rejected-error">{{.Error}}</dd>
{{if .Line}}<dt>At</dt><dd>line {{.Line}}{{if .Column}}, column {{.Column}}{{end}}</dd>{{end}}
<dt>Document</dt><dd>{{.Size}} bytes, SHA-256 <code>{{.SHA256}}</code> (not shown: it may hold anything)</dd>
</dl>
{{if .Excerpt}}<pre id="rejected-excerpt">{{.Excerpt}}</pre>{{end}}
{{else}}
<p>None.</p>
{{end}}

<h2 id="services">Services</h2>
{{if not .Services}}<p>None watched yet.</p>{{end}}
{{range .Services}}
<h3 id="service-{{.Name}}">{{.Name}}</h3>
<p>Versions: <span class="versions">{{if .Versions}}{{join .Versions}}{{else}}none{{end}}</span>.
Discovery index {{.Index}}{{if not .Ready}}, <span class="bad">no answer yet</span>{{end}}{{if not .Picked}}, <span class="muted">watched for the spec, not called</span>{{end}}.</p>
{{with .Error}}<p class="bad">Discovery failing: {{.}}</p>{{end}}
{{if .Instances}}
<table>
<thead><tr><th>ID</th><th>Address</th><th>Version</th><th>Region</th><th>Zone</th><th>Env</th><th>Weight</th><th>In flight</th><th>Failures in a row</th><th>Ejected until</th></tr></thead>
<tbody>
{{range .Instances}}<tr{{if .EjectedUntil}} class="warn"{{end}}><td>{{.ID}}</td><td>{{.Address}}:{{.Port}}</td><td>{{.Version}}</td><td>{{.Region}}</td><td>{{.Zone}}</td><td>{{.Env}}</td><td>{{.Weight}}</td><td>{{.InFlight}}</td><td>{{.Failures}}</td><td>{{with .EjectedUntil}}{{until . $.Time}}{{else}}-{{end}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p>No instances.</p>{{end}}
{{if .Breakers}}
<table class="breakers">
<thead><tr><th>Circuit breaker of version</th><th>State</th><th>Attempts</th><th>Failures</th><th>Failures in a row</th><th>Times opened</th><th>Failed fast</th></tr></thead>
<tbody>
{{range .Breakers}}<tr{{if ne .State "closed"}} class="bad"{{end}}><td>{{.Version}}</td><td>{{.State}}</td><td>{{.Requests}}</td><td>{{.Failures}}</td><td>{{.ConsecutiveFailures}}</td><td>{{.Opened}}</td><td>{{.Rejected}}</td></tr>
{{end}}</tbody>
</table>
{{end}}
{{if .Lingering}}
<p>Removed from discovery, still taking requests nothing else can:</p>
<table>
<thead><tr><th>ID</th><th>Address</th><th>Version</th><th>Until</th></tr></thead>
<tbody>
{{range .Lingering}}<tr><td>{{.ID}}</td><td>{{.Address}}:{{.Port}}</td><td>{{.Version}}</td><td>{{with .LingerUntil}}{{until . $.Time}}{{end}}</td></tr>
{{end}}</tbody>
</table>
{{end}}
{{end}}
</body>
</html>
`
