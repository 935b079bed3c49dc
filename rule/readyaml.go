package rule

import (
	"bytes"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reading YAML into a tnode tree, with alias expansion bounded.

// maxYAMLNodes bounds alias expansion ("billion laughs"): a document may
// expand to at most one node per two bytes of its text plus
// yamlNodeAllowance, and never more than maxYAMLNodes. Without aliases every
// node takes at least two bytes, so only expansion meets the bound.
const (
	maxYAMLNodes      = 100_000
	yamlNodeAllowance = 1024
)

func readYAML(data []byte) (*tnode, error) {
	if err := checkYAMLShape(data); err != nil {
		return nil, err
	}
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
	budget := min(maxYAMLNodes, len(data)/2+yamlNodeAllowance)
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
