package rule

import (
	"bytes"
)

// The entry points: size check, notation detection, and dispatch to the
// readers (readxml.go, readjson.go, readyaml.go), the front ends
// (fromxml.go, fromtree.go, nepxionjson.go) and build (build.go).

// Parse reads a release rule written as Nepxion XML (<rule>...</rule>), JSON
// or YAML, telling them apart by the first character: '<' for XML, '{' for
// JSON (// and /* */ comments allowed), anything else YAML. JSON comes in
// two shapes, told apart by its keys: graylane's, with the XML names
// ("strategy-release"), and Nepxion's RuleEntity ("strategyReleaseEntity",
// see [EncodeNepxionJSON]). The rule is validated and its expressions
// compiled; the error for a bad document is an [*Error] that says where and
// what, wrapping [ErrSyntax] or [ErrInvalid].
//
// An orchestration spec is not a rule: read it with [ParseSpec], or use
// [ParseDocument] when a document may hold either.
func Parse(data []byte) (*Rule, error) {
	r, s, err := ParseDocument(data)
	if err != nil {
		return nil, err
	}
	if s != nil {
		return nil, &Error{Msg: "document is an orchestration spec (it has a service list), not a rule; orchestrate it first", Err: ErrInvalid}
	}
	return r, nil
}

// ParseDocument reads either a rule or an orchestration spec, so one KV key
// can hold either: XML is always a rule; a JSON or YAML document with a
// top-level "service" key is a spec, any other a rule. Exactly one of the
// results is non-nil when err is nil.
func ParseDocument(data []byte) (*Rule, *Spec, error) {
	if err := checkSize(data); err != nil {
		return nil, nil, err
	}
	f, data := detect(data)
	if f == formatXML {
		r, err := parseXML(data)
		return r, nil, err
	}
	root, err := readTree(f, data)
	if err != nil {
		return nil, nil, err
	}
	if root.kind == tObject && root.get("service") != nil {
		s, err := treeSpec(root)
		return nil, s, err
	}
	if isNepxionJSON(root) {
		r, err := nepxionRule(root)
		return r, nil, err
	}
	r, err := treeRule(root)
	return r, nil, err
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
