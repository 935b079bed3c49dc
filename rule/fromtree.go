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
	known := append([]string{pathStrategy, pathRelease, pathFailover, pathBlacklist}, ignoredSections...)
	err := eachKey(root, "rule", known, func(k string, v *tnode, _ pos) error {
		if isIgnored(k) {
			raw.ignored = append(raw.ignored, k)
			return nil
		}
		if v.kind == tNull {
			return nil
		}
		switch k {
		case pathStrategy:
			return treeValues(v, k, typeNames[:], raw.strategy[:])
		case pathFailover:
			return treeValues(v, k, failoverNames, raw.failover[:])
		case pathBlacklist:
			return treeValues(v, k, blacklistNames, raw.blacklist[:])
		}
		return treeRelease(v, raw)
	})
	if err != nil {
		return nil, err
	}
	return build(raw)
}

func treeValues(n *tnode, path string, names []string, out []rawValue) error {
	return eachKey(n, path, names, func(k string, v *tnode, _ pos) error {
		rv, err := treeValue(v, path+"/"+k)
		out[indexOf(names, k)] = rv
		return err
	})
}

func treeRelease(n *tnode, raw *rawRule) error {
	return eachKey(n, pathRelease, []string{"conditions", "routes", "header"}, func(k string, v *tnode, _ pos) error {
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
		err := eachKey(cn, cpath, []string{"type", "sticky", "condition"}, func(k string, v *tnode, _ pos) error {
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
				err := eachKey(c, ipath, condAttrNames, func(k string, v *tnode, _ pos) error {
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
		err := eachKey(rn, rpath, []string{"id", "type", "value"}, func(k string, v *tnode, _ pos) error {
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
