package rule

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Writing a rule as JSON or YAML: the rule becomes a tnode tree first.

func valueNode(v Value) *tnode {
	if v.IsPlain() || v.IsZero() {
		return str(v.String())
	}
	n := obj()
	for _, p := range v.v.pairs {
		n.add(p.key, str(p.val))
	}
	return n
}

func headerNode(h Header) *tnode {
	n := obj()
	for _, f := range h {
		n.add(f.Name, str(f.Value))
	}
	return n
}

func valuesNode(names []string, vs []Value) *tnode {
	n := obj()
	for i, v := range vs {
		if !v.IsZero() {
			n.add(names[i], valueNode(v))
		}
	}
	if len(n.keys) == 0 {
		return nil
	}
	return n
}

func ruleTree(r *Rule) *tnode {
	root := obj()
	root.addKept(r, "")
	if n := valuesNode(typeNames[:], strategyValues(&r.Strategy)); n != nil {
		root.add(pathStrategy, n)
	}
	root.addKept(r, pathStrategy)
	if rel := &r.Release; !rel.IsZero() {
		root.add(pathRelease, releaseTree(rel))
	}
	root.addKept(r, pathRelease)
	if n := valuesNode(failoverNames, derefValues(r.Failover.fields())); n != nil {
		root.add(pathFailover, n)
	}
	root.addKept(r, pathFailover)
	if n := valuesNode(blacklistNames, derefValues(r.Blacklist.fields())); n != nil {
		root.add(pathBlacklist, n)
	}
	root.addKept(r, pathBlacklist)
	if isNepxionJSON(root) {
		// Only kept sections with RuleEntity names: an empty strategy
		// keeps the document graylane's JSON, as it was.
		root.keys = append([]string{pathStrategy}, root.keys...)
		root.kids = append([]*tnode{obj()}, root.kids...)
	}
	return root
}

// releaseTree is <strategy-release> as a tree: conditions by type, routes,
// header.
func releaseTree(rel *Release) *tnode {
	rn := obj()
	conds := &tnode{kind: tArray}
	for _, set := range []struct {
		typ   string
		conds []Condition
	}{{"blue-green", rel.BlueGreen}, {"gray", rel.Gray}} {
		if len(set.conds) == 0 && (set.typ != "gray" || rel.Sticky == "") {
			continue
		}
		cs := obj().add("type", str(set.typ))
		if set.typ == "gray" && rel.Sticky != "" {
			cs.add("sticky", str(formatSticky(rel.Sticky)))
		}
		list := &tnode{kind: tArray}
		for i := range set.conds {
			c := &set.conds[i]
			cn := obj().add("id", str(c.ID))
			if e := c.expression(); e != "" {
				cn.add("expression", str(e))
			}
			for t := range numTypes {
				if id := c.RouteID(t); id != "" {
					cn.add(t.idAttr(), str(id))
				}
			}
			list.kids = append(list.kids, cn)
		}
		cs.add("condition", list)
		conds.kids = append(conds.kids, cs)
	}
	if len(conds.kids) > 0 {
		rn.add("conditions", conds)
	}
	if len(rel.Routes) > 0 {
		routes := &tnode{kind: tArray}
		for _, rt := range rel.Routes {
			routes.kids = append(routes.kids, obj().add("id", str(rt.ID)).add("type", str(rt.Type.String())).add("value", valueNode(rt.Value)))
		}
		rn.add("routes", routes)
	}
	if len(rel.Header) > 0 {
		rn.add("header", headerNode(rel.Header))
	}
	return rn
}

// addKept adds the kept sections that followed the known section after:
// JSON and YAML values as they were, XML sections as strings holding their
// text, which EncodeXML writes back as XML.
func (n *tnode) addKept(r *Rule, after string) {
	for _, k := range r.keptAt(after) {
		n.add(k.name, k.treeValue())
	}
}

// writeJSON writes n indented by two spaces.
func writeJSON(b *strings.Builder, n *tnode, depth int) {
	ind := func(d int) {
		b.WriteByte('\n')
		for range d {
			b.WriteString("  ")
		}
	}
	switch n.kind {
	case tObject:
		if len(n.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ind(depth + 1)
			writeJSONString(b, k)
			b.WriteString(": ")
			writeJSON(b, n.kids[i], depth+1)
		}
		ind(depth)
		b.WriteByte('}')
	case tArray:
		if len(n.kids) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			ind(depth + 1)
			writeJSON(b, k, depth+1)
		}
		ind(depth)
		b.WriteByte(']')
	case tString:
		writeJSONString(b, n.text)
	case tNumber, tBool:
		if isJSONLiteral(n) {
			b.WriteString(n.text)
		} else {
			// A YAML number or boolean JSON cannot spell (0777, 1_000,
			// .inf, True) is written as the string it reads.
			writeJSONString(b, n.text)
		}
	default:
		b.WriteString("null")
	}
}

// isJSONLiteral reports whether a number or boolean node's text is valid
// JSON as it stands.
func isJSONLiteral(n *tnode) bool {
	if n.kind == tBool {
		return n.text == "true" || n.text == "false"
	}
	p := objParser{s: n.text}
	_, err := p.num()
	return err == nil && p.i == len(n.text)
}

func toYAML(n *tnode) *yaml.Node {
	switch n.kind {
	case tObject:
		y := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i, k := range n.keys {
			y.Content = append(y.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, toYAML(n.kids[i]))
		}
		return y
	case tArray:
		y := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, k := range n.kids {
			y.Content = append(y.Content, toYAML(k))
		}
		return y
	case tNumber:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: n.text}
	case tBool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: n.text}
	case tNull:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	y := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: n.text}
	if strings.ContainsAny(n.text, "\n\r\t") || !validText(n.text) {
		y.Style = yaml.DoubleQuotedStyle
	}
	return y
}

func encodeTreeJSON(n *tnode) []byte {
	var b strings.Builder
	writeJSON(&b, n, 0)
	b.WriteByte('\n')
	return []byte(b.String())
}

func encodeTreeYAML(n *tnode) ([]byte, error) {
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	if err := e.Encode(toYAML(n)); err != nil {
		return nil, &Error{Msg: "YAML: " + err.Error(), Err: withCause(ErrUnencodable, err)}
	}
	if err := e.Close(); err != nil {
		return nil, &Error{Msg: "YAML: " + err.Error(), Err: withCause(ErrUnencodable, err)}
	}
	return buf.Bytes(), nil
}

// EncodeJSON writes r as JSON in the shape [Parse] reads: the XML sections
// as keys, conditions and routes as lists, values as objects by service or
// plain strings. Sections graylane does not use are written back where they
// were: JSON and YAML values as they are, XML sections as strings holding
// their XML, which [EncodeXML] writes back as XML. Parsing the result gives
// an equal rule.
func EncodeJSON(r *Rule) ([]byte, error) {
	if r == nil {
		return nil, &Error{Msg: "nil rule", Err: ErrInvalid}
	}
	return encodeTreeJSON(ruleTree(r)), nil
}

// EncodeYAML writes r as YAML in the same shape as [EncodeJSON].
func EncodeYAML(r *Rule) ([]byte, error) {
	if r == nil {
		return nil, &Error{Msg: "nil rule", Err: ErrInvalid}
	}
	return encodeTreeYAML(ruleTree(r))
}
