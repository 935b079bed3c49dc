package rule

import (
	"slices"
	"strconv"
	"strings"
)

// Nepxion's JSON rule format: the RuleEntity a Java hop reads with Jackson
// (JsonConfigParser), field by field:
//
//	{"strategyEntity": {"versionValue": "...", ...},
//	 "strategyReleaseEntity": {
//	   "strategyConditionBlueGreenEntityList": [{"id", "expression", "versionId", ...}],
//	   "strategyConditionGrayEntityList": [{"id", "expression",
//	       "versionWeightEntity": {"weightMap": {"route-id": 90, ...}}, ...}],
//	   "strategyRouteEntityList": [{"id", "type": "VERSION", "value"}],
//	   "strategyHeaderEntity": {"headerMap": {...}}},
//	 "strategyFailoverEntity": {...}, "strategyBlacklistEntity": {...},
//	 "registerEntity": {...}, "discoveryEntity": {...}, "parameterEntity": {...}}
//
// Fields of other Nepxion versions are read as the other notations read
// unknown elements: inside the entities graylane reads (idList in an old
// strategyBlacklistEntity) they are skipped and listed in Rule.Ignored; at
// the top, like registerEntity, discoveryEntity, parameterEntity and
// content, they are kept as they are (strategyCustomizationEntity,
// customizationEntity).

// nepxionEntities maps the RuleEntity fields graylane reads to the XML
// section they hold.
var nepxionEntities = []struct{ field, section string }{
	{"strategyEntity", pathStrategy},
	{"strategyReleaseEntity", pathRelease},
	{"strategyFailoverEntity", pathFailover},
	{"strategyBlacklistEntity", pathBlacklist},
}

// nepxionKept are the RuleEntity fields graylane keeps without reading.
var nepxionKept = []string{"registerEntity", "discoveryEntity", "parameterEntity", "content"}

var (
	nepxionStrategyFields  = []string{"versionValue", "regionValue", "addressValue", "versionWeightValue", "regionWeightValue"}
	nepxionFailoverFields  = []string{"versionPreferValue", "versionFailoverValue", "regionTransferValue", "regionFailoverValue", "environmentFailoverValue", "zoneFailoverValue", "addressFailoverValue"}
	nepxionBlacklistFields = []string{"idValue", "addressValue"}
	nepxionReleaseFields   = []string{"strategyConditionBlueGreenEntityList", "strategyConditionGrayEntityList", "strategyRouteEntityList", "strategyHeaderEntity"}
	nepxionBlueGreenFields = []string{"id", "expression", "versionId", "regionId", "addressId", "versionWeightId", "regionWeightId"}
	nepxionGrayFields      = []string{"id", "expression", "versionWeightEntity", "regionWeightEntity", "addressWeightEntity"}
	nepxionRouteFields     = []string{"id", "type", "value"}
	// The route types by their Java enum names, in RouteType order.
	nepxionRouteTypes = [numTypes]string{"VERSION", "REGION", "ADDRESS", "VERSION_WEIGHT", "REGION_WEIGHT"}
)

// isNepxionJSON reports whether a JSON or YAML document is in Nepxion's
// entity format: it has a field holding a section graylane reads
// (strategyEntity, ...), or only RuleEntity fields; and none of graylane's
// section names.
func isNepxionJSON(root *tnode) bool {
	if root.kind != tObject || len(root.keys) == 0 {
		return false
	}
	reads, all := false, true
	for _, k := range root.keys {
		if isRuleSection(k) {
			return false
		}
		reads = reads || nepxionSection(k) != ""
		all = all && (nepxionSection(k) != "" || indexOf(nepxionKept, k) >= 0)
	}
	return reads || all
}

// isRuleSection reports whether k names a section of graylane's JSON.
func isRuleSection(k string) bool {
	switch k {
	case pathStrategy, pathRelease, pathFailover, pathBlacklist:
		return true
	}
	return false
}

// isEntityField reports whether a section kept from graylane's JSON is a
// RuleEntity field (kept from Nepxion's JSON, carried through graylane's),
// which EncodeNepxionJSON writes back.
func isEntityField(k string) bool {
	return indexOf(nepxionKept, k) >= 0 || strings.HasSuffix(k, "Entity")
}

// nepxionSection returns the section a RuleEntity field holds, or "".
func nepxionSection(field string) string {
	for _, e := range nepxionEntities {
		if e.field == field {
			return e.section
		}
	}
	return ""
}

func nepxionRule(root *tnode) (*Rule, error) {
	raw := &rawRule{}
	after := ""
	err := eachKey(root, "rule", nil, func(k string, v *tnode, _ pos) error {
		sec := nepxionSection(k)
		if sec == "" {
			raw.kept = append(raw.kept, keptSection{name: k, after: after, tree: v, entity: true})
			if k == "discoveryEntity" {
				return nepxionDiscovery(v, raw)
			}
			raw.ignore(k)
			return nil
		}
		after = sec
		if v.kind == tNull {
			return nil
		}
		switch sec {
		case pathStrategy:
			return nepxionValues(v, k, nepxionStrategyFields, raw.strategy[:], raw)
		case pathFailover:
			return nepxionValues(v, k, nepxionFailoverFields, raw.failover[:], raw)
		case pathBlacklist:
			return nepxionValues(v, k, nepxionBlacklistFields, raw.blacklist[:], raw)
		}
		return nepxionRelease(v, raw)
	})
	if err != nil {
		return nil, err
	}
	return build(raw)
}

// nepxionValues reads an entity of string fields holding values.
func nepxionValues(n *tnode, path string, fields []string, out []rawValue, raw *rawRule) error {
	return eachKnownKey(n, path, fields, raw, func(k string, v *tnode) error {
		s, set, err := scalar(v, path+"/"+k)
		if set {
			out[indexOf(fields, k)] = rawValue{at: v.at, set: true, text: s}
		}
		return err
	})
}

// nepxionList walks a list field, which may be null.
func nepxionList(n *tnode, path string, fn func(path string, e *tnode) error) error {
	if n.kind == tNull {
		return nil
	}
	if err := wantKind(n, tArray, path); err != nil {
		return err
	}
	for i, e := range n.kids {
		if err := fn(path+"["+strconv.Itoa(i+1)+"]", e); err != nil {
			return err
		}
	}
	return nil
}

func nepxionRelease(n *tnode, raw *rawRule) error {
	const path = "strategyReleaseEntity"
	return eachKnownKey(n, path, nepxionReleaseFields, raw, func(k string, v *tnode) error {
		kpath := path + "/" + k
		switch k {
		case "strategyConditionBlueGreenEntityList", "strategyConditionGrayEntityList":
			if v.kind == tNull {
				return nil
			}
			gray := k == "strategyConditionGrayEntityList"
			rc := rawConds{at: v.at, typ: rawAttr{s: "blue-green", at: v.at, set: true}}
			if gray {
				rc.typ.s = "gray"
			}
			err := nepxionList(v, kpath, func(cpath string, e *tnode) error {
				c, err := nepxionCondition(e, cpath, gray, raw)
				rc.conds = append(rc.conds, c)
				return err
			})
			raw.conds = append(raw.conds, rc)
			return err
		case "strategyRouteEntityList":
			return nepxionList(v, kpath, func(rpath string, e *tnode) error {
				rr, err := nepxionRoute(e, rpath, raw)
				raw.routes = append(raw.routes, rr)
				return err
			})
		}
		if v.kind == tNull {
			return nil
		}
		return eachKnownKey(v, kpath, []string{"headerMap"}, raw, func(_ string, m *tnode) error {
			if m.kind == tNull {
				return nil
			}
			rv, err := treeValue(m, kpath+"/headerMap")
			raw.header = rv
			return err
		})
	})
}

// nepxionCondition reads one StrategyConditionBlueGreenEntity or
// StrategyConditionGrayEntity. A gray one's weight entities become the
// "route-id=weight;..." attributes of the XML form.
func nepxionCondition(e *tnode, path string, gray bool, raw *rawRule) (rawCond, error) {
	c := rawCond{at: e.at}
	fields := nepxionBlueGreenFields
	if gray {
		fields = nepxionGrayFields
	}
	err := eachKnownKey(e, path, fields, raw, func(k string, v *tnode) error {
		var err error
		switch k {
		case "id":
			c.id, err = treeAttr(v, path+"/id")
			c.id.set = true // Jackson leaves a null id null; Nepxion does not check it
		case "expression":
			c.expr, err = treeAttr(v, path+"/expression")
		case "versionWeightEntity", "regionWeightEntity", "addressWeightEntity":
			t := [...]RouteType{TypeVersion, TypeRegion, TypeAddress}[indexOf(fields, k)-2]
			c.refs[t], err = nepxionWeights(v, path+"/"+k, raw)
		default:
			t := RouteType(indexOf(fields, k) - 2)
			c.refs[t], err = treeAttr(v, path+"/"+k)
		}
		return err
	})
	return c, err
}

// nepxionWeights reads a MapWeightEntity, {"weightMap": {"id": weight}},
// into "id=weight;id=weight".
func nepxionWeights(n *tnode, path string, raw *rawRule) (rawAttr, error) {
	a := rawAttr{at: n.at}
	if n.kind == tNull {
		return a, nil
	}
	var parts []string
	err := eachKnownKey(n, path, []string{"weightMap"}, raw, func(_ string, m *tnode) error {
		if m.kind == tNull {
			return nil
		}
		return eachKey(m, path+"/weightMap", nil, func(id string, w *tnode, _ pos) error {
			s, _, err := scalar(w, path+"/weightMap/"+id)
			parts = append(parts, id+"="+s)
			return err
		})
	})
	if len(parts) > 0 {
		a.s, a.set = strings.Join(parts, ";"), true
	}
	return a, err
}

// nepxionRoute reads one StrategyRouteEntity; its type is the Java enum
// name (VERSION, VERSION_WEIGHT, ...), as Jackson writes it.
func nepxionRoute(e *tnode, path string, raw *rawRule) (rawRoute, error) {
	rr := rawRoute{at: e.at}
	err := eachKnownKey(e, path, nepxionRouteFields, raw, func(k string, v *tnode) error {
		var err error
		switch k {
		case "id":
			rr.id, err = treeAttr(v, path+"/id")
		case "type":
			var a rawAttr
			if a, err = treeAttr(v, path+"/type"); err != nil || !a.set {
				return err
			}
			i := indexOf(nepxionRouteTypes[:], trimSpace(a.s))
			if i < 0 {
				return invalid(v.at, path+"/type", "unknown type "+strconv.Quote(a.s)+" (want "+strings.Join(nepxionRouteTypes[:], ", ")+")")
			}
			rr.typ = rawAttr{s: typeNames[i], at: a.at, set: true}
		default:
			rr.val, err = treeValue(v, path+"/value")
		}
		return err
	})
	return rr, err
}

// EncodeNepxionJSON writes r in Nepxion's JSON rule format, the RuleEntity
// a Java hop reads (see the format above), indented by two spaces. Sections
// kept from a Nepxion JSON document (registerEntity, ...) are written back
// where they were; sections kept from XML or graylane's JSON have no place
// in it and are left out, except <discovery>, whose filters and
// weights are written as discoveryEntity from [Rule.Discovery]. It fails with [ErrUnencodable] when r uses what the format cannot
// carry: a sticky key, or version-weight-id/region-weight-id on a gray
// condition. Parsing the result gives an equal rule, and encoding that
// again gives the same bytes.
func EncodeNepxionJSON(r *Rule) ([]byte, error) {
	if r == nil {
		return nil, &Error{Msg: "nil rule", Err: ErrInvalid}
	}
	if r.Release.Sticky != "" {
		return nil, &Error{Path: pathRelease + "/conditions[type=gray]/sticky", Msg: "Nepxion's JSON format has no sticky key", Err: ErrUnencodable}
	}
	root := obj()
	addKept := func(after string) {
		for _, k := range r.keptAt(after) {
			if k.entity {
				root.add(k.name, k.tree)
			}
		}
	}
	addKept("")
	if (!r.Discovery.IsZero() || r.Discovery.Hosts != nil) && !slices.ContainsFunc(r.kept, func(k keptSection) bool { return k.entity && k.name == "discoveryEntity" }) {
		// Read from XML or graylane's notation: written from the typed form.
		root.add("discoveryEntity", discoveryEntityNode(&r.Discovery))
	}
	if n := nepxionValuesNode(nepxionStrategyFields, strategyValues(&r.Strategy)); n != nil {
		root.add("strategyEntity", n)
	}
	addKept(pathStrategy)
	if !r.Release.IsZero() {
		n, err := nepxionReleaseNode(&r.Release)
		if err != nil {
			return nil, err
		}
		root.add("strategyReleaseEntity", n)
	}
	addKept(pathRelease)
	if n := nepxionValuesNode(nepxionFailoverFields, derefValues(r.Failover.fields())); n != nil {
		root.add("strategyFailoverEntity", n)
	}
	addKept(pathFailover)
	if n := nepxionValuesNode(nepxionBlacklistFields, derefValues(r.Blacklist.fields())); n != nil {
		root.add("strategyBlacklistEntity", n)
	}
	addKept(pathBlacklist)
	return encodeTreeJSON(root), nil
}

func nepxionValuesNode(fields []string, vs []Value) *tnode {
	n := obj()
	for i, v := range vs {
		if !v.IsZero() {
			n.add(fields[i], str(v.String()))
		}
	}
	if len(n.keys) == 0 {
		return nil
	}
	return n
}

func nepxionReleaseNode(rel *Release) (*tnode, error) {
	n := obj()
	if len(rel.BlueGreen) > 0 {
		list := &tnode{kind: tArray}
		for i := range rel.BlueGreen {
			c := &rel.BlueGreen[i]
			cn := obj().add("id", str(c.ID))
			if e := c.expression(); e != "" {
				cn.add("expression", str(e))
			}
			for t := range numTypes {
				if id := c.RouteID(t); id != "" {
					cn.add(nepxionBlueGreenFields[2+t], str(id))
				}
			}
			list.kids = append(list.kids, cn)
		}
		n.add("strategyConditionBlueGreenEntityList", list)
	}
	if len(rel.Gray) > 0 {
		list := &tnode{kind: tArray}
		for i := range rel.Gray {
			c := &rel.Gray[i]
			cn := obj().add("id", str(c.ID))
			if e := c.expression(); e != "" {
				cn.add("expression", str(e))
			}
			for t := range numTypes {
				s := c.RouteID(t)
				if s == "" {
					continue
				}
				if t != TypeVersion && t != TypeRegion && t != TypeAddress {
					return nil, &Error{Path: pathRelease + "/conditions[type=gray]/condition[id=" + c.ID + "]/" + t.idAttr(),
						Msg: "Nepxion's JSON format has no " + t.idAttr() + " on gray conditions", Err: ErrUnencodable}
				}
				ws, _, _ := parseGrayWeights(s)
				m := obj()
				for _, w := range ws {
					m.add(w.Key, num(w.Weight))
				}
				cn.add(nepxionGrayFields[2+t], obj().add("weightMap", m))
			}
			list.kids = append(list.kids, cn)
		}
		n.add("strategyConditionGrayEntityList", list)
	}
	if len(rel.Routes) > 0 {
		list := &tnode{kind: tArray}
		for _, rt := range rel.Routes {
			list.kids = append(list.kids, obj().add("id", str(rt.ID)).add("type", str(nepxionRouteTypes[rt.Type])).add("value", str(rt.Value.String())))
		}
		n.add("strategyRouteEntityList", list)
	}
	if len(rel.Header) > 0 {
		n.add("strategyHeaderEntity", obj().add("headerMap", headerNode(rel.Header)))
	}
	return n, nil
}
