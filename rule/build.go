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
	r := &Rule{Ignored: raw.ignored}
	if err := buildSections(raw, r); err != nil {
		return nil, err
	}
	rel := &r.Release
	// Routes first: conditions refer to them.
	routes, err := buildRoutes(raw.routes)
	if err != nil {
		return nil, err
	}
	rel.Routes = routes
	if err := buildConditionSets(raw.conds, rel); err != nil {
		return nil, err
	}
	if raw.header.set {
		h, err := buildHeader(&raw.header, pathRelease+"/header")
		if err != nil {
			return nil, err
		}
		rel.Header = h
	}
	r.index()
	return r, nil
}

// isWeightType reports whether values of type t are weight lists.
func isWeightType(t RouteType) bool { return t == TypeVersionWeight || t == TypeRegionWeight }

// buildSections fills the value sections: <strategy>, <strategy-failover>
// and <strategy-blacklist>.
func buildSections(raw *rawRule, r *Rule) error {
	for t := range numTypes {
		rv := &raw.strategy[t]
		if !rv.set {
			continue
		}
		v, err := buildValue(rv, pathStrategy+"/"+t.String(), isWeightType(t))
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
		v, err := buildValue(&raw[i], path+"/"+names[i], false)
		if err != nil {
			return err
		}
		*f = v
	}
	return nil
}

// buildRoutes checks and builds the <route> elements: unique ids without
// ';' or '=', a known type, a value of that type.
func buildRoutes(raw []rawRoute) ([]Route, error) {
	routes := make([]Route, 0, len(raw))
	var routeIDs dupSet
	for i := range raw {
		rr := &raw[i]
		path := pathRelease + "/routes/route[" + strconv.Itoa(i+1) + "]"
		id := trimSpace(rr.id.s)
		if id == "" {
			return nil, invalid(pick(rr.id.at, rr.at), path, "missing id")
		}
		if strings.ContainsAny(id, ";=") {
			return nil, invalid(pick(rr.id.at, rr.at), path, "id "+strconv.Quote(id)+" must not contain ';' or '='")
		}
		path = pathRelease + "/routes/route[id=" + id + "]"
		if !routeIDs.add(id) {
			return nil, invalid(pick(rr.id.at, rr.at), path, "duplicate route id "+strconv.Quote(id))
		}
		typ := trimSpace(rr.typ.s)
		if typ == "" {
			return nil, invalid(pick(rr.typ.at, rr.at), path, "missing type (version, region, address, version-weight or region-weight)")
		}
		t, ok := parseRouteType(typ)
		if !ok {
			return nil, invalid(pick(rr.typ.at, rr.at), path, "unknown type "+strconv.Quote(typ)+" (want version, region, address, version-weight or region-weight)")
		}
		v, err := buildValue(&rr.val, path, isWeightType(t))
		if err != nil {
			return nil, err
		}
		if v.IsZero() {
			return nil, invalid(pick(rr.val.at, rr.at), path, "route has no value")
		}
		routes = append(routes, Route{ID: id, Type: t, Value: v})
	}
	return routes, nil
}

// buildConditionSets builds the <conditions> elements: at most one of each
// type, blue-green or gray, and the sticky key on the gray one.
func buildConditionSets(raw []rawConds, rel *Release) error {
	seenType := map[string]bool{}
	for i := range raw {
		rc := &raw[i]
		typ := trimSpace(rc.typ.s)
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
		conds, err := buildConditions(rc, path, gray, rel.Routes)
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

func buildConditions(rc *rawConds, path string, gray bool, routes []Route) ([]Condition, error) {
	out := make([]Condition, len(rc.conds))
	defaultID := ""
	var ids dupSet
	find := routeFinder(routes)
	for i := range rc.conds {
		raw := &rc.conds[i]
		c := &out[i]
		cpath := path + "/condition[" + strconv.Itoa(i+1) + "]"
		c.ID = trimSpace(raw.id.s)
		if c.ID == "" {
			return nil, invalid(pick(raw.id.at, raw.at), cpath, "missing id")
		}
		cpath = path + "/condition[id=" + c.ID + "]"
		if !ids.add(c.ID) {
			return nil, invalid(pick(raw.id.at, raw.at), cpath, "duplicate condition id "+strconv.Quote(c.ID))
		}
		if src := trimSpace(raw.expr.s); src != "" {
			e, err := expr.Compile(src)
			if err != nil {
				return nil, &Error{Path: cpath + "/expression", Line: pick(raw.expr.at, raw.at).line, Column: pick(raw.expr.at, raw.at).col,
					Msg: "expression " + strconv.Quote(src) + ": " + err.Error(), Err: withCause(ErrInvalid, err)}
			}
			c.Expression = e
		} else {
			if defaultID != "" {
				return nil, invalid(raw.at, cpath, "more than one condition without expression (the default is "+strconv.Quote(defaultID)+")")
			}
			defaultID = c.ID
		}
		hasRef := false
		for t := range numTypes {
			a := &raw.refs[t]
			s := trimSpace(a.s)
			if !a.set || s == "" {
				continue
			}
			hasRef = true
			apath := cpath + "/" + t.idAttr()
			at := pick(a.at, raw.at)
			if !gray {
				if strings.ContainsAny(s, ";=") {
					return nil, invalid(at, apath, strconv.Quote(s)+": a blue-green condition takes one route id (weights belong to gray conditions)")
				}
				rt, msg := find(s, t)
				if msg != "" {
					return nil, invalid(at, apath, msg)
				}
				c.refs[t] = []ref{{route: rt}}
				c.setRouteID(t, s)
				continue
			}
			ws, msg := parseWeights(s)
			if msg != "" {
				return nil, invalid(at, apath, msg+" (a gray condition takes route-id=weight;route-id=weight)")
			}
			refs := make([]ref, len(ws))
			var cum uint64
			for k, w := range ws {
				rt, msg := find(w.Key, t)
				if msg != "" {
					return nil, invalid(at, apath, msg)
				}
				cum += uint64(w.Weight)
				refs[k] = ref{route: rt, cum: cum}
			}
			c.refs[t] = refs
			c.setRouteID(t, formatWeights(ws))
		}
		if !hasRef {
			return nil, invalid(raw.at, cpath, "no route reference (version-id, region-id, address-id, version-weight-id or region-weight-id)")
		}
	}
	return out, nil
}

// routeFinder returns a look-up of routes by id that checks the type.
func routeFinder(routes []Route) func(id string, t RouteType) (*Route, string) {
	byID := make(map[string]*Route, len(routes))
	for i := range routes {
		byID[routes[i].ID] = &routes[i]
	}
	return func(id string, t RouteType) (*Route, string) {
		rt := byID[id]
		if rt == nil {
			return nil, "unknown route id " + strconv.Quote(id)
		}
		if rt.Type != t {
			return nil, "route " + strconv.Quote(id) + " has type " + rt.Type.String() + ", not " + t.String()
		}
		return rt, ""
	}
}

// buildValue turns raw text or an object into a Value. Weight values are
// checked to be weight lists.
func buildValue(rv *rawValue, path string, weights bool) (Value, error) {
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
				if _, msg := parseWeights(s); msg != "" {
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
			if _, msg := parseWeights(p.val); msg != "" {
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
