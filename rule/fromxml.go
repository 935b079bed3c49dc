package rule

import (
	"strconv"
	"strings"
)

// The XML front end: an xnode tree becomes the raw form (raw.go).
//
// It is as lenient as Nepxion's XmlConfigParser, which reads the elements
// and attributes it knows and skips the rest: unknown sections are kept
// verbatim, unknown elements and attributes inside known sections are
// listed in Rule.Ignored, and stray text is skipped. What Nepxion rejects
// (a second <strategy>, a second <version> in it, a second <routes>, ...)
// is rejected here too.

func parseXML(data []byte) (*Rule, error) {
	root, err := readXML(data)
	if err != nil {
		return nil, err
	}
	raw := &rawRule{}
	if root.name != "rule" {
		raw.ignore("<" + root.name + "> (the root element, read as <rule>)")
	}
	xIgnoreAttrs(root, "rule", nil, raw)
	if err := xSections(data, root, raw); err != nil {
		return nil, err
	}
	return build(raw)
}

// xSections reads the children of <rule>. A run of sections graylane does
// not use is kept as one piece of text, from the first one's '<' to the
// last one's end tag, comments and spacing included, so a document padded
// with unknown sections costs no more than its size to keep.
func xSections(data []byte, root *xnode, raw *rawRule) error {
	seen := map[string]bool{}
	after := ""
	run := -1 // index in root.kids of the first section of the current run
	flush := func(end int) {
		if run >= 0 {
			first, last := root.kids[run], root.kids[end-1]
			// encoding/xml lets invalid UTF-8 through in comments; the
			// replacement keeps the text the same in every notation.
			text := strings.ToValidUTF8(string(data[first.start:last.end]), "\uFFFD")
			raw.kept = append(raw.kept, keptSection{name: first.name, after: after, xml: text})
			run = -1
		}
	}
	for i, sec := range root.kids {
		if seen[sec.name] && indexOf(nepxionSections, sec.name) >= 0 {
			return invalid(sec.at, sec.name, "duplicate <"+sec.name+"> section")
		}
		seen[sec.name] = true
		var err error
		switch sec.name {
		case pathStrategy:
			err = xValues(sec, pathStrategy, typeNames[:], raw.strategy[:], raw)
		case pathFailover:
			err = xValues(sec, pathFailover, failoverNames, raw.failover[:], raw)
		case pathBlacklist:
			err = xValues(sec, pathBlacklist, blacklistNames, raw.blacklist[:], raw)
		case pathRelease:
			err = xRelease(sec, raw)
		default:
			if sec.name == pathDiscovery {
				// Read for routing, and kept verbatim for the round trip.
				if err := xDiscovery(sec, raw); err != nil {
					return err
				}
			} else {
				raw.ignore(sec.name)
			}
			if run < 0 {
				run = i
			}
			continue
		}
		if err != nil {
			return err
		}
		flush(i)
		after = sec.name
	}
	flush(len(root.kids))
	return nil
}

// xIgnoreAttrs lists the attributes of n not in known.
func xIgnoreAttrs(n *xnode, path string, known []string, raw *rawRule) {
	for _, a := range n.attrs {
		if indexOf(known, a.Name.Local) < 0 {
			raw.ignore(path + "@" + a.Name.Local)
		}
	}
}

// xValues reads a section whose children are text elements with known
// names; each may appear once.
func xValues(sec *xnode, path string, names []string, out []rawValue, raw *rawRule) error {
	xIgnoreAttrs(sec, path, nil, raw)
	for _, k := range sec.kids {
		i := indexOf(names, k.name)
		if i < 0 {
			raw.ignore(path + "/" + k.name)
			continue
		}
		kpath := path + "/" + k.name
		if out[i].set {
			return invalid(k.at, kpath, "duplicate element")
		}
		xLeaf(k, kpath, raw)
		out[i] = rawValue{at: k.at, set: true, text: k.text.String()}
	}
	return nil
}

// xLeaf lists what a text element carries besides its text.
func xLeaf(n *xnode, path string, raw *rawRule) {
	xIgnoreAttrs(n, path, nil, raw)
	for _, k := range n.kids {
		raw.ignore(path + "/" + k.name)
	}
}

// xAttrs reads the attributes of n into the named slots and lists the
// others.
func xAttrs(n *xnode, path string, names []string, out []*rawAttr, raw *rawRule) {
	for _, a := range n.attrs {
		i := indexOf(names, a.Name.Local)
		if i < 0 {
			raw.ignore(path + "@" + a.Name.Local)
			continue
		}
		*out[i] = rawAttr{s: a.Value, at: n.at, set: true}
	}
}

// xRelease reads <strategy-release>: conditions, routes and header.
func xRelease(sec *xnode, raw *rawRule) error {
	xIgnoreAttrs(sec, pathRelease, nil, raw)
	seenRoutes := false
	for _, k := range sec.kids {
		switch k.name {
		case "conditions":
			xConditions(k, raw)
		case "routes":
			if seenRoutes {
				return invalid(k.at, pathRelease+"/routes", "duplicate <routes> element")
			}
			seenRoutes = true
			xRoutes(k, raw)
		case "header":
			path := pathRelease + "/header"
			if raw.header.set {
				return invalid(k.at, path, "duplicate <header> element")
			}
			xLeaf(k, path, raw)
			raw.header = rawValue{at: k.at, set: true, text: k.text.String()}
		default:
			raw.ignore(pathRelease + "/" + k.name)
		}
	}
	return nil
}

// xConditions reads one <conditions> element and its <condition> children.
func xConditions(k *xnode, raw *rawRule) {
	path := pathRelease + "/conditions[" + strconv.Itoa(len(raw.conds)+1) + "]"
	rc := rawConds{at: k.at}
	if t := k.attr("type"); t != "" {
		path = pathRelease + "/conditions[type=" + trimSpace(t) + "]"
	}
	xAttrs(k, path, []string{"type", "sticky"}, []*rawAttr{&rc.typ, &rc.sticky}, raw)
	for i, c := range k.kids {
		cpath := path + "/condition[" + strconv.Itoa(i+1) + "]"
		if c.name != "condition" {
			raw.ignore(path + "/" + c.name)
			continue
		}
		if id := c.attr("id"); id != "" {
			cpath = path + "/condition[id=" + trimSpace(id) + "]"
		}
		for _, x := range c.kids {
			raw.ignore(cpath + "/" + x.name)
		}
		rc.conds = append(rc.conds, rawCond{at: c.at})
		cond := &rc.conds[len(rc.conds)-1]
		xAttrs(c, cpath, condAttrNames, condAttrSlots(cond), raw)
	}
	raw.conds = append(raw.conds, rc)
}

// xRoutes reads <routes> and its <route> children.
func xRoutes(k *xnode, raw *rawRule) {
	path := pathRelease + "/routes"
	xIgnoreAttrs(k, path, nil, raw)
	for i, rt := range k.kids {
		rpath := path + "/route[" + strconv.Itoa(i+1) + "]"
		if rt.name != "route" {
			raw.ignore(path + "/" + rt.name)
			continue
		}
		if id := rt.attr("id"); id != "" {
			rpath = path + "/route[id=" + trimSpace(id) + "]"
		}
		for _, x := range rt.kids {
			raw.ignore(rpath + "/" + x.name)
		}
		rr := rawRoute{at: rt.at, val: rawValue{at: rt.at, set: true, text: rt.text.String()}}
		xAttrs(rt, rpath, []string{"id", "type"}, []*rawAttr{&rr.id, &rr.typ}, raw)
		raw.routes = append(raw.routes, rr)
	}
}

// attr returns the value of n's attribute name, or "".
func (n *xnode) attr(name string) string {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
