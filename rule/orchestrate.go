package rule

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/internal/version"
)

// Orchestration: a spec and the live versions become a rule.

// Instance is what orchestration needs to know about one live instance.
type Instance struct {
	// Version is the instance's version; empty means [DefaultVersion].
	Version string
	// Started is when the instance started; the zero time when unknown.
	// Used by SortTime only.
	Started time.Time
}

// Inventory holds the live instances of each service, by service name.
type Inventory map[string][]Instance

// Orchestrate expands a spec into a full rule with the live versions of each
// service, as Nepxion's console does:
//
//   - each service's versions are ordered (see [Sort]), [DefaultVersion]
//     first, duplicates removed; the first is old, the rest new ("2.0;3.0"
//     for three versions; new = old when there is only one);
//   - <strategy><version> and route-0 map every service to its old version,
//     route-1 to its new versions;
//   - the green (old) blueGreen entry becomes condition-0 pointing to
//     route-0, the blue (new) one condition-1 pointing to route-1, whatever
//     order the spec lists them in (the conditions keep the spec's order);
//   - gray entry i becomes condition-i with "route-0=W0;route-1=W1";
//   - the header and sticky key are copied.
//
// The result depends only on its inputs, so orchestrating again after a
// change that did not move any old/new version encodes to the same bytes. A
// service without instances fails with [ErrNoInstances].
func Orchestrate(spec *Spec, inv Inventory) (*Rule, error) {
	if spec == nil {
		return nil, &Error{Msg: "nil spec", Err: ErrInvalid}
	}
	if err := spec.check(nil); err != nil {
		return nil, err
	}
	old := make([]pair, 0, len(spec.Service))
	nw := make([]pair, 0, len(spec.Service))
	for i, svc := range spec.Service {
		vs := orderVersions(inv[svc], spec.Sort)
		if len(vs) == 0 {
			return nil, &Error{Path: "service[" + strconv.Itoa(i+1) + "]",
				Msg: "service " + strconv.Quote(svc) + " has no live instances", Err: ErrNoInstances}
		}
		n := vs[0]
		if len(vs) > 1 {
			n = strings.Join(vs[1:], ";")
		}
		old = append(old, pair{svc, vs[0]})
		nw = append(nw, pair{svc, n})
	}

	raw := &rawRule{}
	raw.strategy[TypeVersion] = rawValue{set: true, isMap: true, pairs: old}
	if len(spec.BlueGreen) > 0 || len(spec.Gray) > 0 {
		raw.routes = []rawRoute{
			{id: attr("route-0"), typ: attr("version"), val: rawValue{set: true, isMap: true, pairs: old}},
			{id: attr("route-1"), typ: attr("version"), val: rawValue{set: true, isMap: true, pairs: nw}},
		}
	}
	if len(spec.BlueGreen) > 0 {
		rc := rawConds{typ: attr("blue-green")}
		for _, b := range spec.BlueGreen {
			// As Nepxion's console: the id follows the colour, not the position.
			c := rawCond{id: attr("condition-" + strconv.Itoa(int(b.Route))), expr: attr(b.Expression)}
			c.refs[TypeVersion] = attr("route-" + strconv.Itoa(int(b.Route)))
			rc.conds = append(rc.conds, c)
		}
		raw.conds = append(raw.conds, rc)
	}
	if len(spec.Gray) > 0 || spec.Sticky != "" {
		rc := rawConds{typ: attr("gray")}
		if spec.Sticky != "" {
			rc.sticky = attr(formatSticky(spec.Sticky))
		}
		for i, g := range spec.Gray {
			c := rawCond{id: attr("condition-" + strconv.Itoa(i)), expr: attr(g.Expression)}
			c.refs[TypeVersion] = attr("route-0=" + strconv.Itoa(g.Weight[0]) + ";route-1=" + strconv.Itoa(g.Weight[1]))
			rc.conds = append(rc.conds, c)
		}
		raw.conds = append(raw.conds, rc)
	}
	if len(spec.Header) > 0 {
		hp := make([]pair, len(spec.Header))
		for i, f := range spec.Header {
			hp[i] = pair{f.Name, f.Value}
		}
		raw.header = rawValue{set: true, isMap: true, pairs: hp}
	}
	return build(raw)
}

func attr(s string) rawAttr { return rawAttr{s: s, set: true} }

// orderVersions returns a service's distinct versions, oldest first.
func orderVersions(insts []Instance, by Sort) []string {
	type ver struct {
		name    string
		started time.Time // earliest known start
	}
	var vs []ver
	for _, in := range insts {
		name := trimSpace(in.Version)
		if name == "" {
			name = DefaultVersion
		}
		i := slices.IndexFunc(vs, func(v ver) bool { return v.name == name })
		if i < 0 {
			vs = append(vs, ver{name: name})
			i = len(vs) - 1
		}
		if !in.Started.IsZero() && (vs[i].started.IsZero() || in.Started.Before(vs[i].started)) {
			vs[i].started = in.Started
		}
	}
	slices.SortFunc(vs, func(a, b ver) int {
		if (a.name == DefaultVersion) != (b.name == DefaultVersion) {
			if a.name == DefaultVersion {
				return -1
			}
			return 1
		}
		if by == SortTime {
			// Known start times first, earliest first; unknown ones after.
			switch az, bz := a.started.IsZero(), b.started.IsZero(); {
			case az && !bz:
				return 1
			case !az && bz:
				return -1
			case !az && !bz:
				if c := a.started.Compare(b.started); c != 0 {
					return c
				}
			}
		}
		return version.Compare(a.name, b.name)
	})
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.name
	}
	return out
}
