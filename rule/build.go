package rule

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/graylane/graylane/expr"
)

// The front ends (XML, and JSON/YAML) read a document into this raw form,
// keeping positions; build validates it and makes the Rule.

type pos struct{ line, col int }

type rawAttr struct {
	s   string
	at  pos
	set bool
}

type rawValue struct {
	at    pos
	set   bool
	text  string // XML text or a JSON/YAML string
	pairs []pair // a JSON/YAML object
	isMap bool
}

type rawCond struct {
	at       pos
	id, expr rawAttr
	refs     [numTypes]rawAttr
}

type rawConds struct {
	at          pos
	typ, sticky rawAttr
	conds       []rawCond
}

type rawRoute struct {
	at      pos
	id, typ rawAttr
	val     rawValue
}

type rawRule struct {
	strategy  [numTypes]rawValue
	conds     []rawConds
	routes    []rawRoute
	header    rawValue
	failover  [7]rawValue
	blacklist [2]rawValue
	ignored   []string
}

func invalid(at pos, path, msg string) *Error {
	return &Error{Path: path, Line: at.line, Column: at.col, Msg: msg, Err: ErrInvalid}
}

// pick returns the first known position.
func pick(ps ...pos) pos {
	for _, p := range ps {
		if p.line > 0 {
			return p
		}
	}
	return pos{}
}

const (
	pathStrategy  = "strategy"
	pathRelease   = "strategy-release"
	pathFailover  = "strategy-failover"
	pathBlacklist = "strategy-blacklist"
)

func build(raw *rawRule) (*Rule, error) {
	r := &Rule{Ignored: raw.ignored}

	for t := range numTypes {
		rv := &raw.strategy[t]
		if !rv.set {
			continue
		}
		v, err := buildValue(rv, pathStrategy+"/"+t.String(), t.Kind() == Weights)
		if err != nil {
			return nil, err
		}
		r.Strategy.set(t, v)
	}
	for i, f := range r.Failover.fields() {
		if raw.failover[i].set {
			v, err := buildValue(&raw.failover[i], pathFailover+"/"+failoverNames[i], false)
			if err != nil {
				return nil, err
			}
			*f = v
		}
	}
	for i, f := range r.Blacklist.fields() {
		if raw.blacklist[i].set {
			v, err := buildValue(&raw.blacklist[i], pathBlacklist+"/"+blacklistNames[i], false)
			if err != nil {
				return nil, err
			}
			*f = v
		}
	}

	rel := &r.Release
	// Routes first: conditions refer to them.
	rel.Routes = make([]Route, 0, len(raw.routes))
	var routeIDs dupSet
	for i := range raw.routes {
		rr := &raw.routes[i]
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
		v, err := buildValue(&rr.val, path, t.Kind() == Weights)
		if err != nil {
			return nil, err
		}
		if v.IsZero() {
			return nil, invalid(pick(rr.val.at, rr.at), path, "route has no value")
		}
		rel.Routes = append(rel.Routes, Route{ID: id, Type: t, Value: v})
	}

	seenType := map[string]bool{}
	for i := range raw.conds {
		rc := &raw.conds[i]
		typ := trimSpace(rc.typ.s)
		path := pathRelease + "/conditions[" + strconv.Itoa(i+1) + "]"
		if typ == "" {
			return nil, invalid(pick(rc.typ.at, rc.at), path, "missing type (blue-green or gray)")
		}
		if typ != "blue-green" && typ != "gray" {
			return nil, invalid(pick(rc.typ.at, rc.at), path, "unknown condition type "+strconv.Quote(typ)+" (want blue-green or gray)")
		}
		path = pathRelease + "/conditions[type=" + typ + "]"
		if seenType[typ] {
			return nil, invalid(rc.at, path, "duplicate conditions element for type "+typ)
		}
		seenType[typ] = true
		gray := typ == "gray"
		if rc.sticky.set {
			if !gray {
				return nil, invalid(pick(rc.sticky.at, rc.at), path, "sticky applies to gray conditions only")
			}
			name, msg := parseSticky(rc.sticky.s)
			if msg != "" {
				return nil, invalid(pick(rc.sticky.at, rc.at), path+"/sticky", msg)
			}
			rel.Sticky = name
		}
		conds, err := buildConditions(rc, path, gray, rel.Routes)
		if err != nil {
			return nil, err
		}
		if gray {
			rel.Gray = conds
		} else {
			rel.BlueGreen = conds
		}
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

// parseSticky reads a sticky key: #H['name'], #H["name"] or a bare name.
func parseSticky(s string) (string, string) {
	s = trimSpace(s)
	name := s
	if rest, ok := strings.CutPrefix(s, "#H["); ok {
		if len(rest) < 3 || rest[len(rest)-1] != ']' {
			return "", "sticky key " + strconv.Quote(s) + " must read #H['name']"
		}
		inner := rest[:len(rest)-1]
		q := inner[0]
		if (q != '\'' && q != '"') || inner[len(inner)-1] != q || len(inner) < 3 {
			return "", "sticky key " + strconv.Quote(s) + " must read #H['name']"
		}
		name = inner[1 : len(inner)-1]
		if strings.IndexByte(name, q) >= 0 {
			return "", "sticky key " + strconv.Quote(s) + " has a stray quote"
		}
	} else if strings.ContainsAny(s, "#[]'\" \t\r\n") {
		return "", "sticky key " + strconv.Quote(s) + " must be #H['name'] or a bare name"
	}
	if name == "" {
		return "", "empty sticky key"
	}
	if !validText(name) {
		return "", "sticky key " + strconv.Quote(s) + " holds a control character"
	}
	return name, ""
}

func formatSticky(name string) string {
	if strings.IndexByte(name, '\'') >= 0 {
		return `#H["` + name + `"]`
	}
	return "#H['" + name + "']"
}

// validText reports whether s is valid UTF-8 without control characters
// other than tab, newline and carriage return.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// fold reports whether the built-in header alone decides c's expression:
// when every name it reads is a header name, and the header wins, the
// request cannot change the result, so Decide need not evaluate it.
func (r *Rule) fold(c *Condition) uint8 {
	h := r.Release.Header
	if c.Expression == nil || len(h) == 0 {
		return foldNone
	}
	for _, n := range c.Expression.Names() {
		if _, ok := h.Get(n); !ok {
			return foldNone
		}
	}
	if c.Expression.Match(h) {
		return foldTrue
	}
	return foldFalse
}

// index precomputes the per-type condition lists Decide walks.
func (r *Rule) index() {
	for tier, conds := range [2][]Condition{r.Release.BlueGreen, r.Release.Gray} {
		for i := range conds {
			c := &conds[i]
			c.idx = i
			c.folded = r.fold(c)
			for t := range numTypes {
				if len(c.refs[t]) == 0 {
					continue
				}
				if c.Expression == nil {
					r.defaults[tier][t] = c
				} else {
					r.conds[tier][t] = append(r.conds[tier][t], c)
				}
			}
		}
	}
	if len(r.Release.Header) > 0 {
		r.headerMap = make(map[string]string, len(r.Release.Header))
		for _, f := range r.Release.Header {
			r.headerMap[f.Name] = f.Value
		}
	}
	r.sticky = r.Release.Sticky
	for t := range numTypes {
		r.strategy[t] = r.Strategy.Get(t)
	}
	r.overlays = newOverlayPool()
}
