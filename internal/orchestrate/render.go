package orchestrate

import (
	"errors"
	"slices"
	"strings"

	"github.com/graylane/graylane/rule"
)

// Rendering is a spec expanded into a rule.
type Rendering struct {
	// Rule is the expanded rule and XML its Nepxion XML encoding, what the
	// rule key holds.
	Rule *rule.Rule
	XML  []byte
	// Pending lists the spec's services that had no instances: the rule
	// leaves them unconstrained until they appear.
	Pending []string
}

// Render expands spec against inv as the balancer does: a service without
// instances is left out of the rule (listed in Pending) rather than holding
// back every other service. When no service has an instance it fails with
// an error wrapping [rule.ErrNoInstances]; any other error is the spec's.
func Render(spec *rule.Spec, inv rule.Inventory) (*Rendering, error) {
	if spec == nil {
		return nil, errors.New("orchestrate: nil spec")
	}
	var present, pending []string
	for _, name := range spec.Service {
		if len(inv[name]) == 0 {
			pending = append(pending, name)
		} else {
			present = append(present, name)
		}
	}
	s := spec
	if len(pending) > 0 && len(present) > 0 {
		partial := *spec
		partial.Service = present
		s = &partial
	}
	r, err := rule.Orchestrate(s, inv)
	if err != nil {
		return nil, err
	}
	xml, err := rule.EncodeXML(r)
	if err != nil {
		return nil, err
	}
	return &Rendering{Rule: r, XML: xml, Pending: pending}, nil
}

// namedVersions returns the versions r's <strategy> version and version
// routes give service, each once: what a rendering of a spec names.
func namedVersions(r *rule.Rule, service string) []string {
	var out []string
	read := func(v rule.Value) {
		s, ok := v.For(service)
		if !ok {
			return
		}
		for alt := range strings.SplitSeq(s, ";") {
			if alt = strings.TrimSpace(alt); alt != "" && !slices.Contains(out, alt) {
				out = append(out, alt)
			}
		}
	}
	read(r.Strategy.Version)
	for i := range r.Release.Routes {
		if rt := &r.Release.Routes[i]; rt.Type == rule.TypeVersion {
			read(rt.Value)
		}
	}
	return out
}
