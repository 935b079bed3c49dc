package rule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// tnode is a JSON or YAML value read into memory with its position; maps
// keep document order.
type tnode struct {
	kind  tkind
	text  string   // scalars: the literal text (numbers as written)
	keys  []string // objects
	keyAt []pos
	kids  []*tnode // object values or array items
	at    pos
}

type tkind uint8

const (
	tNull tkind = iota
	tString
	tNumber
	tBool
	tObject
	tArray
)

func (k tkind) String() string {
	return [...]string{"null", "a string", "a number", "a boolean", "an object", "a list"}[k]
}

// get returns the value under key in an object, or nil.
func (n *tnode) get(key string) *tnode {
	for i, k := range n.keys {
		if k == key {
			return n.kids[i]
		}
	}
	return nil
}

// format reports whether data is XML, JSON or YAML by its first non-space
// byte.
type format uint8

const (
	formatYAML format = iota
	formatXML
	formatJSON
)

func detect(data []byte) (format, []byte) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	i := skipSpace(data, 0)
	if i < len(data) {
		switch data[i] {
		case '<':
			return formatXML, data
		case '{', '[':
			return formatJSON, data
		case '/':
			if i+1 < len(data) && (data[i+1] == '/' || data[i+1] == '*') {
				return formatJSON, data
			}
		}
	}
	return formatYAML, data
}

// readTree reads a JSON (with // and /* */ comments) or YAML document.
func readTree(f format, data []byte) (*tnode, error) {
	if f == formatJSON {
		return readJSON(data)
	}
	return readYAML(data)
}

// stripComments blanks out // line and /* */ block comments outside strings,
// keeping every offset, so positions in errors stay right.
func stripComments(data []byte) []byte {
	if !bytes.Contains(data, []byte("/")) {
		return data
	}
	out := bytes.Clone(data)
	inStr := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch {
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			j := bytes.Index(out[i+2:], []byte("*/"))
			end := len(out)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			for ; i < end; i++ {
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
			i--
		}
	}
	return out
}

func readJSON(data []byte) (*tnode, error) {
	data = stripComments(data)
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	li := newLineIndex(data)
	type frame struct {
		n       *tnode
		wantKey bool
	}
	var stack []frame
	var root *tnode
	jsonErr := func(err error, off int) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = int(se.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			off = len(data)
			return syntaxErr(li.at(off), "malformed JSON: unexpected end of input", err)
		}
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "json: ")
		return syntaxErr(li.at(off), "malformed JSON: "+msg, err)
	}
	for {
		off := skipJSONSep(data, int(d.InputOffset()))
		tok, err := d.Token()
		if err == io.EOF {
			if root == nil || len(stack) > 0 {
				return nil, jsonErr(io.ErrUnexpectedEOF, off)
			}
			return root, nil
		}
		if err != nil {
			return nil, jsonErr(err, off)
		}
		if root != nil && len(stack) == 0 {
			return nil, syntaxErr(li.at(off), "malformed JSON: content after the top-level value", nil)
		}
		at := li.at(off)
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.n.kind == tObject && top.wantKey {
				if _, isDelim := tok.(json.Delim); !isDelim {
					k, _ := tok.(string)
					top.n.keys = append(top.n.keys, k)
					top.n.keyAt = append(top.n.keyAt, at)
					top.wantKey = false
					continue
				}
			}
		}
		var n *tnode
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				n = &tnode{kind: tObject, at: at}
			case '[':
				n = &tnode{kind: tArray, at: at}
			default: // closing
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			n = &tnode{kind: tString, text: t, at: at}
		case json.Number:
			n = &tnode{kind: tNumber, text: t.String(), at: at}
		case bool:
			n = &tnode{kind: tBool, text: strconv.FormatBool(t), at: at}
		case nil:
			n = &tnode{kind: tNull, at: at}
		}
		if len(stack) == 0 {
			root = n
		} else {
			top := &stack[len(stack)-1]
			top.n.kids = append(top.n.kids, n)
			top.wantKey = true
		}
		if n.kind == tObject || n.kind == tArray {
			stack = append(stack, frame{n: n, wantKey: true})
		}
	}
}

func skipJSONSep(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// maxYAMLNodes bounds alias expansion ("billion laughs").
const maxYAMLNodes = 100_000

func readYAML(data []byte) (*tnode, error) {
	d := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := d.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, syntaxErr(pos{}, "empty document", nil)
		}
		return nil, yamlErr(err)
	}
	var extra yaml.Node
	if err := d.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, yamlErr(err)
		}
		return nil, syntaxErr(pos{extra.Line, extra.Column}, "more than one YAML document", nil)
	}
	budget := maxYAMLNodes
	return fromYAML(&doc, &budget, 0)
}

func yamlErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	at := pos{}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, e := strconv.Atoi(rest[:i]); e == nil {
				at.line = n
				msg = trimSpace(rest[i+1:])
			}
		}
	}
	return syntaxErr(at, "malformed YAML: "+msg, err)
}

func fromYAML(y *yaml.Node, budget *int, depth int) (*tnode, error) {
	*budget--
	if *budget < 0 {
		return nil, syntaxErr(pos{y.Line, y.Column}, "document too large (alias expansion)", nil)
	}
	if depth > 200 {
		return nil, syntaxErr(pos{y.Line, y.Column}, "document nested too deeply", nil)
	}
	at := pos{y.Line, y.Column}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return nil, syntaxErr(at, "empty document", nil)
		}
		return fromYAML(y.Content[0], budget, depth+1)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, syntaxErr(at, "unknown alias", nil)
		}
		return fromYAML(y.Alias, budget, depth+1)
	case yaml.MappingNode:
		n := &tnode{kind: tObject, at: at}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, invalid(pos{k.Line, k.Column}, "", "mapping keys must be plain strings")
			}
			v, err := fromYAML(y.Content[i+1], budget, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k.Value)
			n.keyAt = append(n.keyAt, pos{k.Line, k.Column})
			n.kids = append(n.kids, v)
		}
		return n, nil
	case yaml.SequenceNode:
		n := &tnode{kind: tArray, at: at}
		for _, c := range y.Content {
			v, err := fromYAML(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, v)
		}
		return n, nil
	case yaml.ScalarNode:
		switch y.ShortTag() {
		case "!!null":
			return &tnode{kind: tNull, at: at}, nil
		case "!!int", "!!float":
			return &tnode{kind: tNumber, text: y.Value, at: at}, nil
		case "!!bool":
			return &tnode{kind: tBool, text: y.Value, at: at}, nil
		}
		return &tnode{kind: tString, text: y.Value, at: at}, nil
	}
	return nil, syntaxErr(at, "unsupported YAML node", nil)
}

// Tree walking helpers for the rule and spec readers.

func wantKind(n *tnode, k tkind, path string) error {
	if n.kind != k {
		return invalid(n.at, path, "must be "+k.String()+", not "+n.kind.String())
	}
	return nil
}

// eachKey walks an object's members, rejecting duplicate keys and keys not
// in known (when known is non-nil).
func eachKey(n *tnode, path string, known []string, fn func(key string, v *tnode, at pos) error) error {
	if err := wantKind(n, tObject, path); err != nil {
		return err
	}
	var seen dupSet
	for i, k := range n.keys {
		if !seen.add(k) {
			return invalid(n.keyAt[i], path, "duplicate key "+strconv.Quote(k))
		}
		if known != nil && indexOf(known, k) < 0 {
			return invalid(n.keyAt[i], path, "unknown key "+strconv.Quote(k)+" (want "+strings.Join(known, ", ")+")")
		}
		if err := fn(k, n.kids[i], n.keyAt[i]); err != nil {
			return err
		}
	}
	return nil
}

// scalar returns the text of a string, number or boolean; set is false for
// null.
func scalar(n *tnode, path string) (s string, set bool, err error) {
	switch n.kind {
	case tNull:
		return "", false, nil
	case tString, tNumber, tBool:
		return n.text, true, nil
	}
	return "", false, invalid(n.at, path, "must be a string, not "+n.kind.String())
}

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

// Encoding: a rule or spec becomes a tnode tree, written as JSON or YAML.

func obj() *tnode { return &tnode{kind: tObject} }

func (n *tnode) add(key string, v *tnode) *tnode {
	n.keys = append(n.keys, key)
	n.kids = append(n.kids, v)
	return n
}

func str(s string) *tnode { return &tnode{kind: tString, text: s} }

func num(i int) *tnode { return &tnode{kind: tNumber, text: strconv.Itoa(i)} }

func valueNode(v Value) *tnode {
	if v.IsPlain() {
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
	if n := valuesNode(typeNames[:], strategyValues(&r.Strategy)); n != nil {
		root.add(pathStrategy, n)
	}
	if rel := &r.Release; !rel.IsZero() {
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
		root.add(pathRelease, rn)
	}
	if n := valuesNode(failoverNames, derefValues(r.Failover.fields())); n != nil {
		root.add(pathFailover, n)
	}
	if n := valuesNode(blacklistNames, derefValues(r.Blacklist.fields())); n != nil {
		root.add(pathBlacklist, n)
	}
	return root
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
		b.WriteString(n.text)
	default:
		b.WriteString("null")
	}
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
// plain strings. Parsing the result gives an equal rule.
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
