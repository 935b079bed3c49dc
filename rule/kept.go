package rule

import "strings"

// Sections graylane does not use (Nepxion's <register>, <discovery>,
// <parameter>, <strategy-customization>, anything newer) are kept as
// written, so a rule graylane rewrites still carries them for the Java
// hops.

// keptSection is one top-level section graylane does not use. It holds the
// section in the notation it was read from: verbatim XML text, or the
// JSON/YAML value. after is the known section it followed ("" at the
// start), so the encoders put it back in its place.
type keptSection struct {
	name  string
	after string
	xml   string // the element from '<' to its end tag, when read from XML
	tree  *tnode // the value, when read from JSON or YAML
	// entity marks a RuleEntity field of Nepxion's JSON format, which
	// EncodeNepxionJSON writes back.
	entity bool
}

// keptAt returns the kept sections that follow the known section after,
// in document order.
func (r *Rule) keptAt(after string) []keptSection {
	var out []keptSection
	for _, k := range r.kept {
		if k.after == after {
			out = append(out, k)
		}
	}
	return out
}

// xmlText returns the section as XML: its own text when read from XML, or
// a string value holding that element when an encoder carried it through
// JSON or YAML. ok is false when the section has no XML form.
func (k *keptSection) xmlText() (string, bool) {
	if k.xml != "" {
		return k.xml, true
	}
	if k.tree != nil && k.tree.kind == tString {
		s := trimSpace(k.tree.text)
		if strings.HasPrefix(s, "<"+k.name) && unusedXML(s) {
			return s, true
		}
	}
	return "", false
}

// unusedXML reports whether s is well-formed XML content made of elements
// graylane does not use, so writing it into <rule> neither breaks the
// document nor changes the rule.
func unusedXML(s string) bool {
	if len(s) > MaxDocumentSize {
		return false
	}
	root, err := readXML([]byte("<rule>" + s + "</rule>"))
	if err != nil || trimSpace(root.text.String()) != "" {
		return false
	}
	for _, sec := range root.kids {
		switch sec.name {
		case pathStrategy, pathRelease, pathFailover, pathBlacklist:
			return false
		}
	}
	return true
}

// treeValue returns the section as a JSON/YAML value: its value when read
// from JSON or YAML, or its XML text as a string.
func (k *keptSection) treeValue() *tnode {
	if k.tree != nil {
		return k.tree
	}
	return str(k.xml)
}
