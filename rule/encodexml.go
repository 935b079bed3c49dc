package rule

import (
	"strconv"
	"strings"
)

// Writing a rule as Nepxion XML.

// EncodeXML writes r as a Nepxion rule document: the XML declaration, then
// <rule> indented by four spaces, attributes in Nepxion's order. Sections
// graylane does not use are written back verbatim where they were (those
// read from Nepxion's JSON entities have no XML form and are left out).
// Parsing the result gives an equal rule, and encoding that again gives
// the same bytes.
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
	body.kept(r, "")
	body.values(pathStrategy, typeNames[:], strategyValues(&r.Strategy))
	body.kept(r, pathStrategy)
	body.release(&r.Release)
	body.kept(r, pathRelease)
	body.values(pathFailover, failoverNames, derefValues(r.Failover.fields()))
	body.kept(r, pathFailover)
	body.values(pathBlacklist, blacklistNames, derefValues(r.Blacklist.fields()))
	body.kept(r, pathBlacklist)
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

// kept writes the kept sections that followed the known section after.
func (w *xmlWriter) kept(r *Rule, after string) {
	for _, k := range r.keptAt(after) {
		if s, ok := k.xmlText(); ok {
			w.indent()
			w.b.WriteString(s)
			w.b.WriteByte('\n')
		}
	}
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
