package rule

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Reading XML into an xnode tree, checking it is well-formed.

// xnode is an XML element read into memory with its position.
type xnode struct {
	name  string
	attrs []xml.Attr
	text  strings.Builder
	kids  []*xnode
	at    pos
	// start and end are the element's byte offsets in the document, from
	// its '<' to just past its end tag, so a section can be kept verbatim.
	start, end int
}

// readXML reads an XML document into a tree, checking it is well-formed.
func readXML(data []byte) (*xnode, error) {
	if err := checkXMLShape(data); err != nil {
		return nil, err
	}
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
			n := &xnode{name: t.Name.Local, at: li.at(start), start: start}
			if dup := duplicateAttr(t.Attr); dup != "" {
				return nil, syntaxErr(n.at, "malformed XML: attribute "+strconv.Quote(dup)+" repeated in <"+n.name+">", nil)
			}
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
			stack[len(stack)-1].end = int(d.InputOffset())
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

// duplicateAttr returns the name of an attribute given twice, or "": XML
// forbids it, and encoding/xml does not check.
func duplicateAttr(attrs []xml.Attr) string {
	if len(attrs) <= 8 { // a few attributes: compare pairs, without allocating
		for i := range attrs {
			for j := range i {
				if attrs[i].Name == attrs[j].Name {
					return attrs[i].Name.Local
				}
			}
		}
		return ""
	}
	var seen dupSet
	for _, a := range attrs {
		if !seen.add(a.Name.Space + ":" + a.Name.Local) {
			return a.Name.Local
		}
	}
	return ""
}
