package main

import (
	"fmt"

	"github.com/graylane/graylane/rule"
)

func runRender(e *env, args []string) int {
	fs := newFlags("render", "-spec FILE [-format xml|json|yaml] [-consul ADDR]", e.stderr)
	specFile := fs.String("spec", "", "the spec `FILE` (YAML or JSON; - for standard input)")
	format := fs.String("format", "xml", "output format: xml (Nepxion), json or yaml")
	cf := addConsulFlags(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if *specFile == "" && len(pos) == 1 {
		*specFile, pos = pos[0], nil
	}
	if *specFile == "" || len(pos) > 0 {
		e.errorf("render", "want one spec file (-spec FILE)")
		fs.Usage()
		return exitUsage
	}
	encode, err := encoder(*format)
	if err != nil {
		e.errorf("render", "%v", err)
		return exitUsage
	}
	name := displayName(*specFile)
	data, err := e.readInput(*specFile)
	if err != nil {
		e.errorf("render", "%v", err)
		return exitFailed
	}
	_, spec, err := rule.ParseDocument(data)
	if err != nil {
		fmt.Fprint(e.stderr, docError(name, err))
		return exitFailed
	}
	if spec == nil {
		e.errorf("render", "%s holds a full rule, not a spec: nothing to orchestrate (graylane validate checks it)", name)
		return exitFailed
	}
	r, err := orchestrate(cf, spec)
	if err != nil {
		e.errorf("render", "%s: %v", name, err)
		return exitFailed
	}
	out, err := encode(r)
	if err != nil {
		e.errorf("render", "%s: %v", name, err)
		return exitFailed
	}
	_, _ = e.stdout.Write(out)
	return exitOK
}

func encoder(format string) (func(*rule.Rule) ([]byte, error), error) {
	switch format {
	case "xml":
		return rule.EncodeXML, nil
	case "json":
		return rule.EncodeJSON, nil
	case "yaml":
		return rule.EncodeYAML, nil
	}
	return nil, fmt.Errorf("unknown format %q (want xml, json or yaml)", format)
}
