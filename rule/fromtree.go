package rule

import (
	"strconv"
)

// The JSON and YAML front end: a tnode tree becomes the raw form (raw.go).

func treeAttr(n *tnode, path string) (rawAttr, error) {
	s, set, err := scalar(n, path)
	return rawAttr{s: s, at: n.at, set: set}, err
}

// treeValue reads a value: a string (plain, or JSON object text) or an
// object of service -> string.
func treeValue(n *tnode, path string) (rawValue, error) {
	if n.kind == tObject {
		rv := rawValue{at: n.at, set: true, isMap: true}
		err := eachKey(n, path, nil, func(k string, v *tnode, _ pos) error {
			s, set, err := scalar(v, path+"/"+k)
			if err != nil {
				return err
			}
			if !set {
				return invalid(v.at, path+"/"+k, "value must not be null")
			}
			rv.pairs = append(rv.pairs, pair{k, s})
			return nil
		})
		return rv, err
	}
	s, set, err := scalar(n, path)
	return rawValue{at: n.at, set: set, text: s}, err
}

func treeRule(root *tnode) (*Rule, error) {
	raw := &rawRule{}
	after := ""
	err := eachKey(root, "rule", nil, func(k string, v *tnode, _ pos) error {
		switch k {
		case pathStrategy, pathFailover, pathBlacklist, pathRelease:
		default:
			raw.kept = append(raw.kept, keptSection{name: k, after: after, tree: v, entity: isEntityField(k)})
			if found, err := treeDiscovery(v, raw); found || err != nil {
				if raw.discovery.set && found && err == nil && k != pathDiscovery {
					raw.ignore(k) // a run of kept sections that holds <discovery>
				}
				return err
			}
			raw.ignore(k)
			return nil
		}
		after = k
		if v.kind == tNull {
			return nil
		}
		switch k {
		case pathStrategy:
			return treeValues(v, k, typeNames[:], raw.strategy[:], raw)
		case pathFailover:
			return treeValues(v, k, failoverNames, raw.failover[:], raw)
		case pathBlacklist:
			return treeValues(v, k, blacklistNames, raw.blacklist[:], raw)
		}
		return treeRelease(v, raw)
	})
	if err != nil {
		return nil, err
	}
	return build(raw)
}

// eachKnownKey walks an object's members like eachKey, listing the keys
// not in known in Rule.Ignored instead of rejecting them, as the XML front
// end does with unknown elements.
func eachKnownKey(n *tnode, path string, known []string, raw *rawRule, fn func(key string, v *tnode) error) error {
	return eachKey(n, path, nil, func(k string, v *tnode, _ pos) error {
		if indexOf(known, k) < 0 {
			raw.ignore(path + "/" + k)
			return nil
		}
		return fn(k, v)
	})
}

func treeValues(n *tnode, path string, names []string, out []rawValue, raw *rawRule) error {
	return eachKnownKey(n, path, names, raw, func(k string, v *tnode) error {
		rv, err := treeValue(v, path+"/"+k)
		out[indexOf(names, k)] = rv
		return err
	})
}

func treeRelease(n *tnode, raw *rawRule) error {
	return eachKnownKey(n, pathRelease, []string{"conditions", "routes", "header"}, raw, func(k string, v *tnode) error {
		switch k {
		case "conditions":
			return treeConditions(v, raw)
		case "routes":
			return treeRoutes(v, raw)
		}
		if v.kind == tNull {
			return nil
		}
		rv, err := treeValue(v, pathRelease+"/header")
		raw.header = rv
		return err
	})
}

func treeConditions(n *tnode, raw *rawRule) error {
	path := pathRelease + "/conditions"
	if n.kind == tNull {
		return nil
	}
	if err := wantKind(n, tArray, path); err != nil {
		return err
	}
	for i, cn := range n.kids {
		rc := rawConds{at: cn.at}
		cpath := path + "[" + strconv.Itoa(i+1) + "]"
		var list *tnode
		err := eachKnownKey(cn, cpath, []string{"type", "sticky", "condition"}, raw, func(k string, v *tnode) error {
			var err error
			switch k {
			case "type":
				rc.typ, err = treeAttr(v, cpath+"/type")
			case "sticky":
				rc.sticky, err = treeAttr(v, cpath+"/sticky")
			default:
				list = v
			}
			return err
		})
		if err != nil {
			return err
		}
		if t := trimSpace(rc.typ.s); t != "" {
			cpath = path + "[type=" + t + "]"
		}
		if list != nil && list.kind != tNull {
			if err := wantKind(list, tArray, cpath+"/condition"); err != nil {
				return err
			}
			for j, c := range list.kids {
				rc.conds = append(rc.conds, rawCond{at: c.at})
				cond := &rc.conds[len(rc.conds)-1]
				slots := condAttrSlots(cond)
				ipath := cpath + "/condition[" + strconv.Itoa(j+1) + "]"
				err := eachKnownKey(c, ipath, condAttrNames, raw, func(k string, v *tnode) error {
					a, err := treeAttr(v, ipath+"/"+k)
					*slots[indexOf(condAttrNames, k)] = a
					return err
				})
				if err != nil {
					return err
				}
			}
		}
		raw.conds = append(raw.conds, rc)
	}
	return nil
}

func treeRoutes(n *tnode, raw *rawRule) error {
	path := pathRelease + "/routes"
	if n.kind == tNull {
		return nil
	}
	if err := wantKind(n, tArray, path); err != nil {
		return err
	}
	for i, rn := range n.kids {
		rr := rawRoute{at: rn.at}
		rpath := path + "/route[" + strconv.Itoa(i+1) + "]"
		err := eachKnownKey(rn, rpath, []string{"id", "type", "value"}, raw, func(k string, v *tnode) error {
			var err error
			switch k {
			case "id":
				rr.id, err = treeAttr(v, rpath+"/id")
			case "type":
				rr.typ, err = treeAttr(v, rpath+"/type")
			default:
				rr.val, err = treeValue(v, rpath+"/value")
			}
			return err
		})
		if err != nil {
			return err
		}
		raw.routes = append(raw.routes, rr)
	}
	return nil
}
