package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/rule"
)

func runPublish(e *env, args []string) int {
	fs := newFlags("publish", "-key KEY [-cas INDEX] [-consul ADDR] FILE", e.stderr)
	key := fs.String("key", "", "the Consul KV `KEY` the balancers watch (Nepxion: <group>-<service> or <group>-<group>)")
	cas := fs.Int64("cas", -1, "check-and-set: write only if the key's ModifyIndex is `INDEX` (0: only if the key does not exist)")
	cf := addConsulFlags(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if *key == "" || len(pos) != 1 {
		e.errorf("publish", "want -key KEY and one file")
		fs.Usage()
		return exitUsage
	}
	name := displayName(pos[0])
	data, err := e.readInput(pos[0])
	if err != nil {
		e.errorf("publish", "%v", err)
		return exitFailed
	}
	r, spec, err := rule.ParseDocument(data)
	if err != nil {
		fmt.Fprint(e.stderr, docError(name, err))
		e.errorf("publish", "%s is invalid: not published", name)
		return exitFailed
	}
	// Hops load a rule whose expression does not compile (the condition
	// never holds), but nobody means to publish one.
	if ws := brokenExpressions(r); len(ws) > 0 {
		for _, w := range ws {
			fmt.Fprint(e.stderr, w.format(name, "error"))
		}
		e.errorf("publish", "%s is invalid: not published", name)
		return exitFailed
	}
	cl, where, err := cf.client()
	if err != nil {
		e.errorf("publish", "%v", err)
		return exitFailed
	}
	ctx, cancel := cf.context()
	defer cancel()
	if spec != nil {
		// A spec that cannot be orchestrated yet is still published: the
		// balancers apply it once the services have instances. Say so.
		inv, err := inventory(ctx, cl, where, spec.Services())
		if err != nil {
			e.errorf("publish", "%v", err)
			return exitFailed
		}
		if _, err := rule.Orchestrate(spec, inv); err != nil {
			if !errors.Is(err, rule.ErrNoInstances) {
				fmt.Fprint(e.stderr, docError(name, err))
				e.errorf("publish", "%s is invalid: not published", name)
				return exitFailed
			}
			fmt.Fprintf(e.stderr, "warning: %s: %v; balancers keep the rule they have until it can be orchestrated\n", name, err)
		}
	} else if services := routedServices(r); len(services) > 0 {
		// A rule is checked against the live catalog too: valid, but
		// routing to a version nothing runs is worth a word.
		inv, err := inventory(ctx, cl, where, services)
		if err != nil {
			e.errorf("publish", "%v", err)
			return exitFailed
		}
		for _, w := range unrunWarnings(r, inv) {
			fmt.Fprintf(e.stderr, "warning: %s: %s\n", name, w)
		}
	}
	pair := &api.KVPair{Key: *key, Value: data}
	wq := (&api.WriteOptions{}).WithContext(ctx)
	if *cas >= 0 {
		pair.ModifyIndex = uint64(*cas)
		ok, _, err := cl.KV().CAS(pair, wq)
		if err != nil {
			e.errorf("publish", "consul at %s: put %q: %v", where, *key, err)
			return exitFailed
		}
		if !ok {
			e.errorf("publish", "key %q changed since index %d: not published (read it again, then retry)", *key, *cas)
			return exitFailed
		}
	} else if _, err := cl.KV().Put(pair, wq); err != nil {
		e.errorf("publish", "consul at %s: put %q: %v", where, *key, err)
		return exitFailed
	}
	kind := "rule"
	if spec != nil {
		kind = "spec"
	}
	fmt.Fprintf(e.stdout, "published %s (%s, %d bytes) to %s at %s\n", name, kind, len(data), *key, where)
	return exitOK
}
