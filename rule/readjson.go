package rule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Reading JSON (with // and /* */ comments) into a tnode tree.

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
	if err := checkJSONShape(data); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	li := newLineIndex(data)
	var stack []jsonFrame
	var root *tnode
	for {
		off := skipJSONSep(data, int(d.InputOffset()))
		tok, err := d.Token()
		if err == io.EOF {
			if root == nil || len(stack) > 0 {
				return nil, jsonErr(data, li, io.ErrUnexpectedEOF, off)
			}
			return root, nil
		}
		if err != nil {
			return nil, jsonErr(data, li, err, off)
		}
		if root != nil && len(stack) == 0 {
			return nil, syntaxErr(li.at(off), "malformed JSON: content after the top-level value", nil)
		}
		at := li.at(off)
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if k, isKey := tok.(string); isKey && top.n.kind == tObject && top.wantKey {
				top.n.keys = append(top.n.keys, k)
				top.n.keyAt = append(top.n.keyAt, at)
				top.wantKey = false
				continue
			}
		}
		n := jsonNode(tok, at)
		if n == nil { // a closing delimiter
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) == 0 {
			root = n
		} else {
			top := &stack[len(stack)-1]
			top.n.kids = append(top.n.kids, n)
			top.wantKey = true
		}
		if n.kind == tObject || n.kind == tArray {
			stack = append(stack, jsonFrame{n: n, wantKey: true})
		}
	}
}

// jsonFrame is an open object or array while reading JSON.
type jsonFrame struct {
	n       *tnode
	wantKey bool // an object's next token is a key
}

// jsonNode returns the node a value token starts, or nil for a closing
// delimiter.
func jsonNode(tok json.Token, at pos) *tnode {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return &tnode{kind: tObject, at: at}
		case '[':
			return &tnode{kind: tArray, at: at}
		}
		return nil
	case string:
		return &tnode{kind: tString, text: t, at: at}
	case json.Number:
		return &tnode{kind: tNumber, text: t.String(), at: at}
	case bool:
		return &tnode{kind: tBool, text: strconv.FormatBool(t), at: at}
	}
	return &tnode{kind: tNull, at: at}
}

// jsonErr positions a decoder error: at the offset it reports, at the end
// for a truncated document, else at off.
func jsonErr(data []byte, li *lineIndex, err error, off int) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return syntaxErr(li.at(len(data)), "malformed JSON: unexpected end of input", err)
	}
	return syntaxErr(li.at(off), "malformed JSON: "+strings.TrimPrefix(err.Error(), "json: "), err)
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
