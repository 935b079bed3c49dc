package rule

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// xnode is an XML element read into memory with its position.
type xnode struct {
	name  string
	attrs []xml.Attr
	text  strings.Builder
	kids  []*xnode
	at    pos
}

// lineIndex converts byte offsets to 1-based line and column (in bytes).
type lineIndex struct {
	data  []byte
	off   int
	line  int
	lineS int // offset where the current line starts
}

func newLineIndex(data []byte) *lineIndex { return &lineIndex{data: data, line: 1} }

// at returns the position of offset off; offsets must not decrease between
// calls unless reset.
func (li *lineIndex) at(off int) pos {
	if off < li.off {
		li.off, li.line, li.lineS = 0, 1, 0
	}
	if off > len(li.data) {
		off = len(li.data)
	}
	for ; li.off < off; li.off++ {
		if li.data[li.off] == '\n' {
			li.line++
			li.lineS = li.off + 1
		}
	}
	return pos{li.line, off - li.lineS + 1}
}

// skipSpace returns the first offset at or after off that is not white space.
func skipSpace(data []byte, off int) int {
	for off < len(data) && isSpace(data[off]) {
		off++
	}
	return off
}

func syntaxErr(at pos, msg string, cause error) *Error {
	return &Error{Line: at.line, Column: at.col, Msg: msg, Err: withCause(ErrSyntax, cause)}
}

// readXML reads an XML document into a tree, checking it is well-formed.
func readXML(data []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	li := newLineIndex(data)
	var root *xnode
	var stack []*xnode
	for {
		start := skipSpace(data, int(d.InputOffset()))
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Error{Line: se.Line, Msg: "malformed XML: " + se.Msg, Err: withCause(ErrSyntax, err)}
			}
			return nil, syntaxErr(li.at(start), "malformed XML: "+err.Error(), err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: t.Name.Local, at: li.at(start)}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, syntaxErr(n.at, "content after the root element", nil)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, syntaxErr(li.at(start), "text outside the root element", nil)
			}
		}
	}
	if root == nil {
		return nil, syntaxErr(pos{}, "no root element", nil)
	}
	return root, nil
}

// ignoredSections are Nepxion rule sections graylane accepts and skips.
var ignoredSections = []string{"register", "discovery", "strategy-customization", "parameter"}

func isIgnored(name string) bool {
	for _, s := range ignoredSections {
		if s == name {
			return true
		}
	}
	return false
}

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

func indexOf(names []string, s string) int {
	for i, n := range names {
		if n == s {
			return i
		}
	}
	return -1
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

var condAttrNames = []string{"id", "expression", "version-id", "region-id", "address-id", "version-weight-id", "region-weight-id"}

func condAttrSlots(c *rawCond) []*rawAttr {
	return []*rawAttr{&c.id, &c.expr, &c.refs[0], &c.refs[1], &c.refs[2], &c.refs[3], &c.refs[4]}
}

func xRelease(sec *xnode, raw *rawRule) error {
	if err := xNoAttrs(sec, pathRelease); err != nil {
		return err
	}
	if err := xNoText(sec, pathRelease); err != nil {
		return err
	}
	seenRoutes := false
	for _, k := range sec.kids {
		switch k.name {
		case "conditions":
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
		case "routes":
			path := pathRelease + "/routes"
			if seenRoutes {
				return invalid(k.at, path, "duplicate <routes> element")
			}
			seenRoutes = true
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
		case "header":
			path := pathRelease + "/header"
			if raw.header.set {
				return invalid(k.at, path, "duplicate <header> element")
			}
			if err := xLeaf(k, path); err != nil {
				return err
			}
			raw.header = rawValue{at: k.at, set: true, text: k.text.String()}
		default:
			return invalid(k.at, pathRelease, "unknown element <"+k.name+"> (want conditions, routes or header)")
		}
	}
	return nil
}

// EncodeXML writes r as a Nepxion rule document: the XML declaration, then
// <rule> indented by four spaces, attributes in Nepxion's order. Parsing the
// result gives an equal rule, and encoding that again gives the same bytes.
// It fails with [ErrUnencodable] when the rule holds characters XML 1.0
// cannot carry.
func EncodeXML(r *Rule) ([]byte, error) {
	if r == nil {
		return nil, &Error{Msg: "nil rule", Err: ErrInvalid}
	}
	w := &xmlWriter{}
	w.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	var body xmlWriter
	body.depth = 1
	body.values(pathStrategy, typeNames[:], strategyValues(&r.Strategy))
	body.release(&r.Release)
	body.values(pathFailover, failoverNames, derefValues(r.Failover.fields()))
	body.values(pathBlacklist, blacklistNames, derefValues(r.Blacklist.fields()))
	if body.err != nil {
		return nil, body.err
	}
	if body.b.Len() == 0 {
		w.b.WriteString("<rule/>\n")
	} else {
		w.b.WriteString("<rule>\n")
		w.b.WriteString(body.b.String())
		w.b.WriteString("</rule>\n")
	}
	return []byte(w.b.String()), nil
}

func strategyValues(s *Strategy) []Value {
	out := make([]Value, numTypes)
	for t := range numTypes {
		out[t] = s.Get(t)
	}
	return out
}

func derefValues(ps []*Value) []Value {
	out := make([]Value, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

type xmlWriter struct {
	b     strings.Builder
	depth int
	err   error
}

func (w *xmlWriter) indent() {
	for range w.depth {
		w.b.WriteString("    ")
	}
}

func (w *xmlWriter) values(name string, names []string, vs []Value) {
	nonEmpty := false
	for _, v := range vs {
		nonEmpty = nonEmpty || !v.IsZero()
	}
	if !nonEmpty {
		return
	}
	w.open(name, nil)
	for i, v := range vs {
		if !v.IsZero() {
			w.leaf(names[i], nil, v.String(), name+"/"+names[i])
		}
	}
	w.close(name)
}

func (w *xmlWriter) open(name string, attrs [][2]string) {
	w.indent()
	w.b.WriteByte('<')
	w.b.WriteString(name)
	w.attrs(attrs, name)
	w.b.WriteString(">\n")
	w.depth++
}

func (w *xmlWriter) close(name string) {
	w.depth--
	w.indent()
	w.b.WriteString("</" + name + ">\n")
}

// leaf writes <name attrs>text</name>, or <name attrs/> when text is empty.
func (w *xmlWriter) leaf(name string, attrs [][2]string, text, path string) {
	w.indent()
	w.b.WriteByte('<')
	w.b.WriteString(name)
	w.attrs(attrs, path)
	if text == "" {
		w.b.WriteString("/>\n")
		return
	}
	w.b.WriteByte('>')
	w.escape(text, false, path)
	w.b.WriteString("</" + name + ">\n")
}

func (w *xmlWriter) attrs(attrs [][2]string, path string) {
	for _, a := range attrs {
		if a[1] == "" && a[0] != "id" {
			continue
		}
		w.b.WriteByte(' ')
		w.b.WriteString(a[0])
		w.b.WriteString(`="`)
		w.escape(a[1], true, path+"/"+a[0])
		w.b.WriteByte('"')
	}
}

func (w *xmlWriter) escape(s string, attr bool, path string) {
	for _, r := range s {
		switch {
		case r == '&':
			w.b.WriteString("&amp;")
		case r == '<':
			w.b.WriteString("&lt;")
		case r == '>' && !attr:
			w.b.WriteString("&gt;")
		case r == '"' && attr:
			w.b.WriteString("&quot;")
		case r == '\r':
			w.b.WriteString("&#xD;")
		case r == '\n' && attr:
			w.b.WriteString("&#xA;")
		case r == '\t' && attr:
			w.b.WriteString("&#x9;")
		case r == '\n' || r == '\t' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF):
			w.b.WriteRune(r)
		default:
			if w.err == nil {
				w.err = &Error{Path: path, Msg: "character " + strconv.QuoteRune(r) + " cannot be written in XML", Err: ErrUnencodable}
			}
		}
	}
}

func (w *xmlWriter) release(rel *Release) {
	if rel.IsZero() {
		return
	}
	w.open(pathRelease, nil)
	for _, set := range []struct {
		typ   string
		conds []Condition
	}{{"blue-green", rel.BlueGreen}, {"gray", rel.Gray}} {
		if len(set.conds) == 0 && (set.typ != "gray" || rel.Sticky == "") {
			continue
		}
		attrs := [][2]string{{"type", set.typ}}
		if set.typ == "gray" && rel.Sticky != "" {
			attrs = append(attrs, [2]string{"sticky", formatSticky(rel.Sticky)})
		}
		path := pathRelease + "/conditions[type=" + set.typ + "]"
		if len(set.conds) == 0 {
			w.leaf("conditions", attrs, "", path)
			continue
		}
		w.open("conditions", attrs)
		for i := range set.conds {
			c := &set.conds[i]
			ca := [][2]string{{"id", c.ID}, {"expression", c.expression()}}
			for t := range numTypes {
				ca = append(ca, [2]string{t.idAttr(), c.RouteID(t)})
			}
			w.leaf("condition", ca, "", path+"/condition[id="+c.ID+"]")
		}
		w.close("conditions")
	}
	if len(rel.Routes) > 0 {
		w.open("routes", nil)
		for _, rt := range rel.Routes {
			w.leaf("route", [][2]string{{"id", rt.ID}, {"type", rt.Type.String()}}, rt.Value.String(), pathRelease+"/routes/route[id="+rt.ID+"]")
		}
		w.close("routes")
	}
	if len(rel.Header) > 0 {
		w.leaf("header", nil, headerJSON(rel.Header), pathRelease+"/header")
	}
	w.close(pathRelease)
}

func headerJSON(h Header) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range h {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, f.Name)
		b.WriteByte(':')
		writeJSONString(&b, f.Value)
	}
	b.WriteByte('}')
	return b.String()
}
