package rule

import (
	"strconv"
	"strings"

	"github.com/graylane/graylane/expr"
)

// build: the raw form becomes a validated Rule.

// build validates the raw form every front end produces and makes the Rule:
// the one path for every notation, so XML, JSON and YAML accept and reject
// exactly the same rules with the same messages.
func build(raw *rawRule) (*Rule, error) {
	r := &Rule{kept: raw.kept, Discovery: raw.discovery.d}
	if err := buildSections(raw, r); err != nil {
		return nil, err
	}
	rel := &r.Release
	// Routes first: conditions refer to them.
	routes, err := buildRoutes(raw.routes, raw.ignore)
	if err != nil {
		return nil, err
	}
	rel.Routes = routes
	if err := buildConditionSets(raw.conds, rel, raw.ignore); err != nil {
		return nil, err
	}
	if raw.header.set {
		h, err := buildHeader(&raw.header, pathRelease+"/header")
		if err != nil {
			return nil, err
		}
		rel.Header = h
	}
	r.Ignored = raw.ignored
	r.index()
	return r, nil
}

// buildSections fills the value sections: <strategy>, <strategy-failover>
// and <strategy-blacklist>.
func buildSections(raw *rawRule, r *Rule) error {
	for t := range numTypes {
		rv := &raw.strategy[t]
		if !rv.set {
			continue
		}
		v, err := buildValue(rv, pathStrategy+"/"+t.String(), t.Kind() == Weights, raw.ignore)
		if err != nil {
			return err
		}
		r.Strategy.set(t, v)
	}
	if err := buildFields(raw.failover[:], r.Failover.fields(), pathFailover, failoverNames); err != nil {
		return err
	}
	return buildFields(raw.blacklist[:], r.Blacklist.fields(), pathBlacklist, blacklistNames)
}

// buildFields builds the values of a section whose children are plain
// values with known names.
func buildFields(raw []rawValue, out []*Value, path string, names []string) error {
	for i, f := range out {
		if !raw[i].set {
			continue
		}
		v, err := buildValue(&raw[i], path+"/"+names[i], false, nil)
		if err != nil {
			return err
		}
		*f = v
	}
	return nil
}

// buildRoutes checks and builds the <route> elements: an id and a known
// type (in any case, as Nepxion reads it) each. As in Nepxion, ids need
// not be unique (conditions look routes up by id and type) and a route may
// be empty (it routes nowhere, so a condition selecting it yields nothing).
func buildRoutes(raw []rawRoute, ignore func(string)) ([]Route, error) {
	routes := make([]Route, 0, len(raw))
	for i := range raw {
		rr := &raw[i]
		path := pathRelease + "/routes/route[" + strconv.Itoa(i+1) + "]"
		id := trimSpace(rr.id.s)
		if id == "" {
			return nil, invalid(pick(rr.id.at, rr.at), path, "missing id")
		}
		path = pathRelease + "/routes/route[id=" + id + "]"
		typ := trimSpace(rr.typ.s)
		if typ == "" {
			return nil, invalid(pick(rr.typ.at, rr.at), path, "missing type ("+decidedNames+")")
		}
		t, ok := parseRouteType(strings.ToLower(typ))
		if !ok {
			return nil, invalid(pick(rr.typ.at, rr.at), path, "unknown type "+strconv.Quote(typ)+" (want "+decidedNames+")")
		}
		v, err := buildValue(&rr.val, path, t.Kind() == Weights, ignore)
		if err != nil {
			return nil, err
		}
		routes = append(routes, Route{ID: id, Type: t, Value: v, at: rr.at})
	}
	return routes, nil
}

// buildConditionSets builds the <conditions> elements: at most one of each
// type, blue-green or gray, and the sticky key on the gray one.
func buildConditionSets(raw []rawConds, rel *Release, ignore func(string)) error {
	seenType := map[string]bool{}
	for i := range raw {
		rc := &raw[i]
		typ := strings.ToLower(trimSpace(rc.typ.s)) // Nepxion reads the type in any case
		path := pathRelease + "/conditions[" + strconv.Itoa(i+1) + "]"
		if typ == "" {
			return invalid(pick(rc.typ.at, rc.at), path, "missing type (blue-green or gray)")
		}
		if typ != "blue-green" && typ != "gray" {
			return invalid(pick(rc.typ.at, rc.at), path, "unknown condition type "+strconv.Quote(typ)+" (want blue-green or gray)")
		}
		path = pathRelease + "/conditions[type=" + typ + "]"
		if seenType[typ] {
			return invalid(rc.at, path, "duplicate conditions element for type "+typ)
		}
		seenType[typ] = true
		gray := typ == "gray"
		if rc.sticky.set {
			if !gray {
				return invalid(pick(rc.sticky.at, rc.at), path, "sticky applies to gray conditions only")
			}
			name, msg := parseSticky(rc.sticky.s)
			if msg != "" {
				return invalid(pick(rc.sticky.at, rc.at), path+"/sticky", msg)
			}
			rel.Sticky = name
		}
		conds, err := buildConditions(rc, path, gray, rel.Routes, ignore)
		if err != nil {
			return err
		}
		if gray {
			rel.Gray = conds
		} else {
			rel.BlueGreen = conds
		}
	}
	return nil
}

// buildConditions builds the <condition> elements of one <conditions>.
// As in Nepxion, ids need not be unique, several conditions may lack an
// expression (the first one per route type is that type's default), and a
// condition need not reference any route.
func buildConditions(rc *rawConds, path string, gray bool, routes []Route, ignore func(string)) ([]Condition, error) {
	out := make([]Condition, len(rc.conds))
	find := routeFinder(routes)
	for i := range rc.conds {
		raw := &rc.conds[i]
		c := &out[i]
		cpath := path + "/condition[" + strconv.Itoa(i+1) + "]"
		if !raw.id.set {
			return nil, invalid(raw.at, cpath, "missing id")
		}
		c.ID = trimSpace(raw.id.s)
		c.at = raw.at
		c.exprAt = pick(raw.expr.at, raw.header.at, raw.at)
		cpath = path + "/condition[id=" + c.ID + "]"
		e, err := buildExpression(raw, cpath, ignore)
		if err != nil {
			return nil, err
		}
		c.Expression = e
		for t := range numTypes {
			a := &raw.refs[t]
			s := trimSpace(a.s)
			if !a.set || s == "" {
				continue
			}
			if !gray {
				c.refs[t] = []ref{{route: find(s, t)}}
				c.setRouteID(t, s)
				continue
			}
			ws, notes, msg := parseGrayWeights(s)
			if msg != "" {
				return nil, invalid(pick(a.at, raw.at), cpath+"/"+t.idAttr(), msg+" (a gray condition takes route-id=weight;route-id=weight)")
			}
			for _, n := range notes {
				ignore(cpath + "/" + t.idAttr() + ": " + n)
			}
			if len(ws) > 0 {
				c.refs[t] = grayRefs(ws, t, find)
				c.setRouteID(t, formatWeights(ws))
			}
		}
	}
	return out, nil
}

// buildExpression compiles a condition's expression, written as
// expression= or, in older rules, header=; Nepxion rejects a condition
// carrying both. An expression that does not compile does not reject the
// rule, since Nepxion loads it without looking: the condition never holds
// (a Java hop's evaluation throws, which counts as false), and Rule.Ignored
// says why.
func buildExpression(raw *rawCond, cpath string, ignore func(string)) (*expr.Condition, error) {
	a := &raw.expr
	if raw.header.set {
		if raw.expr.set {
			return nil, invalid(pick(raw.header.at, raw.at), cpath, "both expression and header (its old name) are set; keep one")
		}
		a = &raw.header
	}
	src := trimSpace(a.s)
	if src == "" {
		return nil, nil
	}
	e, err := expr.Compile(src)
	if err != nil {
		ignore(cpath + "/expression: never holds: " + strconv.Quote(src) + ": " + err.Error())
		return expr.Invalid(src, err), nil
	}
	return e, nil
}

// grayRefs resolves a gray condition's weights (at least one). Like
// Nepxion, it leaves out the ids that name no route of the type and draws
// among the rest; when none is left, the one placeholder of weight 0 makes
// the condition yield nothing for the type, so the decision falls through
// to <strategy>. Weights of 0 are never drawn, so when all are 0 the
// decision falls through too.
func grayRefs(ws []Weight, t RouteType, find func(string, RouteType) *Route) []ref {
	refs := make([]ref, 0, len(ws))
	var cum uint64
	for _, w := range ws {
		rt := find(w.Key, t)
		if rt.dangling() {
			continue
		}
		cum += uint64(w.Weight)
		refs = append(refs, ref{route: rt, cum: cum})
	}
	if len(refs) == 0 {
		refs = append(refs, ref{route: &Route{ID: ws[0].Key, Type: t}})
	}
	return refs
}

// routeFinder returns a look-up of routes by id and type, as Nepxion looks
// them up: one id may name a version route and a region route, and the
// first route of an id and type wins. An id that names no route of the
// type gives a placeholder route without value (see Route.dangling), which
// a condition keeps so the rule round-trips and a decision can skip it.
func routeFinder(routes []Route) func(id string, t RouteType) *Route {
	type key struct {
		id string
		t  RouteType
	}
	byID := make(map[key]*Route, len(routes))
	for i := range routes {
		k := key{routes[i].ID, routes[i].Type}
		if byID[k] == nil {
			byID[k] = &routes[i]
		}
	}
	return func(id string, t RouteType) *Route {
		if rt := byID[key{id, t}]; rt != nil {
			return rt
		}
		return &Route{ID: id, Type: t}
	}
}

// dangling reports whether rt stands for an id that names no route of its
// type, or for a route without value. A condition selecting it yields no
// value for the type: Nepxion then goes on to the next tier (gray after
// blue-green, <strategy> after gray).
func (rt *Route) dangling() bool { return rt.Value.IsZero() }

// buildValue turns raw text or an object into a Value. Weight values are
// read as Nepxion reads them (see ParseWeights): what is read leniently is
// reported to ignore; only a list Nepxion cannot read either is an error.
func buildValue(rv *rawValue, path string, weights bool, ignore func(string)) (Value, error) {
	var ps []pair
	if rv.isMap {
		ps = rv.pairs
	} else {
		s := trimSpace(rv.text)
		if s == "" {
			return Value{}, nil
		}
		if s[0] != '{' {
			if weights {
				if msg := checkWeights(s, path, ignore); msg != "" {
					return Value{}, invalid(rv.at, path, msg)
				}
			}
			return PlainValue(s), nil
		}
		var err error
		if ps, _, err = parseObject(s, nil); err != nil {
			return Value{}, &Error{Path: path, Line: rv.at.line, Column: rv.at.col, Msg: err.Error(), Err: withCause(ErrInvalid, err)}
		}
	}
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if p.key == "" {
			return Value{}, invalid(rv.at, path, "empty service name")
		}
		if seen[p.key] {
			return Value{}, invalid(rv.at, path, "duplicate service "+strconv.Quote(p.key))
		}
		seen[p.key] = true
		if trimSpace(p.val) == "" {
			return Value{}, invalid(rv.at, path, "service "+strconv.Quote(p.key)+" has an empty value")
		}
		if weights {
			if msg := checkWeights(p.val, path+": service "+strconv.Quote(p.key), ignore); msg != "" {
				return Value{}, invalid(rv.at, path, "service "+strconv.Quote(p.key)+": "+msg)
			}
		}
	}
	cp := make([]pair, len(ps))
	for i, p := range ps {
		cp[i] = pair{strings.ToValidUTF8(p.key, "\uFFFD"), trimSpace(strings.ToValidUTF8(p.val, "\uFFFD"))}
	}
	return newMapValue(cp), nil
}

func buildHeader(rv *rawValue, path string) (Header, error) {
	ps := rv.pairs
	if !rv.isMap {
		s := trimSpace(rv.text)
		if s == "" {
			return nil, nil
		}
		if s[0] != '{' {
			return nil, invalid(rv.at, path, "header must be a JSON object of name: value")
		}
		var err error
		if ps, _, err = parseObject(s, nil); err != nil {
			return nil, &Error{Path: path, Line: rv.at.line, Column: rv.at.col, Msg: err.Error(), Err: withCause(ErrInvalid, err)}
		}
	}
	h := make(Header, 0, len(ps))
	var names dupSet
	for _, p := range ps {
		name := trimSpace(p.key)
		if name == "" {
			return nil, invalid(rv.at, path, "empty header name")
		}
		if !names.add(name) {
			return nil, invalid(rv.at, path, "duplicate header "+strconv.Quote(name))
		}
		h = append(h, HeaderField{strings.ToValidUTF8(name, "\uFFFD"), trimSpace(strings.ToValidUTF8(p.val, "\uFFFD"))})
	}
	return h, nil
}
