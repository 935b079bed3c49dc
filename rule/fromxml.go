package rule

import (
	"strconv"
	"strings"
)

// The XML front end: an xnode tree becomes the raw form (raw.go).

func parseXML(data []byte) (*Rule, error) {
	root, err := readXML(data)
	if err != nil {
		return nil, err
	}
	if root.name != "rule" {
		return nil, invalid(root.at, root.name, "root element must be <rule>, not <"+root.name+">")
	}
	raw := &rawRule{}
	if err := xNoAttrs(root, "rule"); err != nil {
		return nil, err
	}
	if err := xNoText(root, "rule"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, sec := range root.kids {
		if seen[sec.name] {
			return nil, invalid(sec.at, sec.name, "duplicate <"+sec.name+"> section")
		}
		seen[sec.name] = true
		switch sec.name {
		case pathStrategy:
			err = xValues(sec, pathStrategy, typeNames[:], raw.strategy[:])
		case pathFailover:
			err = xValues(sec, pathFailover, failoverNames, raw.failover[:])
		case pathBlacklist:
			err = xValues(sec, pathBlacklist, blacklistNames, raw.blacklist[:])
		case pathRelease:
			err = xRelease(sec, raw)
		default:
			if !isIgnored(sec.name) {
				return nil, invalid(sec.at, "rule", "unknown section <"+sec.name+"> (want strategy, strategy-release, strategy-failover or strategy-blacklist)")
			}
			raw.ignored = append(raw.ignored, sec.name)
		}
		if err != nil {
			return nil, err
		}
	}
	return build(raw)
}

func xNoAttrs(n *xnode, path string) error {
	if len(n.attrs) > 0 {
		return invalid(n.at, path, "unexpected attribute "+strconv.Quote(n.attrs[0].Name.Local))
	}
	return nil
}

func xNoText(n *xnode, path string) error {
	if s := trimSpace(n.text.String()); s != "" {
		if len(s) > 20 {
			s = s[:20] + "..."
		}
		return invalid(n.at, path, "unexpected text "+strconv.Quote(s))
	}
	return nil
}

// xValues reads a section whose children are text elements with known names.
func xValues(sec *xnode, path string, names []string, out []rawValue) error {
	if err := xNoAttrs(sec, path); err != nil {
		return err
	}
	if err := xNoText(sec, path); err != nil {
		return err
	}
	for _, k := range sec.kids {
		i := indexOf(names, k.name)
		if i < 0 {
			return invalid(k.at, path, "unknown element <"+k.name+"> (want one of "+strings.Join(names, ", ")+")")
		}
		kpath := path + "/" + k.name
		if out[i].set {
			return invalid(k.at, kpath, "duplicate element")
		}
		if err := xLeaf(k, kpath); err != nil {
			return err
		}
		out[i] = rawValue{at: k.at, set: true, text: k.text.String()}
	}
	return nil
}

func xLeaf(n *xnode, path string) error {
	if err := xNoAttrs(n, path); err != nil {
		return err
	}
	if len(n.kids) > 0 {
		return invalid(n.kids[0].at, path, "unexpected element <"+n.kids[0].name+"> inside a value")
	}
	return nil
}

// xAttrs reads the attributes of n into the named slots, rejecting unknown
// and duplicate ones.
func xAttrs(n *xnode, path string, names []string, out []*rawAttr) error {
	for _, a := range n.attrs {
		i := indexOf(names, a.Name.Local)
		if i < 0 {
			return invalid(n.at, path, "unknown attribute "+strconv.Quote(a.Name.Local)+" (want "+strings.Join(names, ", ")+")")
		}
		if out[i].set {
			return invalid(n.at, path, "duplicate attribute "+strconv.Quote(a.Name.Local))
		}
		*out[i] = rawAttr{s: a.Value, at: n.at, set: true}
	}
	return nil
}

// xRelease reads <strategy-release>: conditions, routes and header.
func xRelease(sec *xnode, raw *rawRule) error {
	if err := xNoAttrs(sec, pathRelease); err != nil {
		return err
	}
	if err := xNoText(sec, pathRelease); err != nil {
		return err
	}
	seenRoutes := false
	for _, k := range sec.kids {
		var err error
		switch k.name {
		case "conditions":
			err = xConditions(k, raw)
		case "routes":
			if seenRoutes {
				return invalid(k.at, pathRelease+"/routes", "duplicate <routes> element")
			}
			seenRoutes = true
			err = xRoutes(k, raw)
		case "header":
			path := pathRelease + "/header"
			if raw.header.set {
				return invalid(k.at, path, "duplicate <header> element")
			}
			err = xLeaf(k, path)
			raw.header = rawValue{at: k.at, set: true, text: k.text.String()}
		default:
			return invalid(k.at, pathRelease, "unknown element <"+k.name+"> (want conditions, routes or header)")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// xConditions reads one <conditions> element and its <condition> children.
func xConditions(k *xnode, raw *rawRule) error {
	path := pathRelease + "/conditions[" + strconv.Itoa(len(raw.conds)+1) + "]"
	rc := rawConds{at: k.at}
	if err := xAttrs(k, path, []string{"type", "sticky"}, []*rawAttr{&rc.typ, &rc.sticky}); err != nil {
		return err
	}
	if t := trimSpace(rc.typ.s); t != "" {
		path = pathRelease + "/conditions[type=" + t + "]"
	}
	if err := xNoText(k, path); err != nil {
		return err
	}
	for i, c := range k.kids {
		cpath := path + "/condition[" + strconv.Itoa(i+1) + "]"
		if c.name != "condition" {
			return invalid(c.at, path, "unknown element <"+c.name+"> (want <condition>)")
		}
		if len(c.kids) > 0 {
			return invalid(c.kids[0].at, cpath, "unexpected element <"+c.kids[0].name+"> inside a condition")
		}
		if err := xNoText(c, cpath); err != nil {
			return err
		}
		rc.conds = append(rc.conds, rawCond{at: c.at})
		cond := &rc.conds[len(rc.conds)-1]
		if err := xAttrs(c, cpath, condAttrNames, condAttrSlots(cond)); err != nil {
			return err
		}
	}
	raw.conds = append(raw.conds, rc)
	return nil
}

// xRoutes reads <routes> and its <route> children.
func xRoutes(k *xnode, raw *rawRule) error {
	path := pathRelease + "/routes"
	if err := xNoAttrs(k, path); err != nil {
		return err
	}
	if err := xNoText(k, path); err != nil {
		return err
	}
	for i, rt := range k.kids {
		rpath := path + "/route[" + strconv.Itoa(i+1) + "]"
		if rt.name != "route" {
			return invalid(rt.at, path, "unknown element <"+rt.name+"> (want <route>)")
		}
		if len(rt.kids) > 0 {
			return invalid(rt.kids[0].at, rpath, "unexpected element <"+rt.kids[0].name+"> inside a route")
		}
		rr := rawRoute{at: rt.at, val: rawValue{at: rt.at, set: true, text: rt.text.String()}}
		if err := xAttrs(rt, rpath, []string{"id", "type"}, []*rawAttr{&rr.id, &rr.typ}); err != nil {
			return err
		}
		raw.routes = append(raw.routes, rr)
	}
	return nil
}
