package rule

import (
	"strconv"
	"strings"
)

// tnode is the in-memory tree of a JSON or YAML document, with positions;
// the walking helpers below check shapes and keys as the front ends read it.

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

func obj() *tnode { return &tnode{kind: tObject} }

func (n *tnode) add(key string, v *tnode) *tnode {
	n.keys = append(n.keys, key)
	n.kids = append(n.kids, v)
	return n
}

func str(s string) *tnode { return &tnode{kind: tString, text: s} }

func num(i int) *tnode { return &tnode{kind: tNumber, text: strconv.Itoa(i)} }
