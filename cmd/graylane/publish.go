package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	orch "github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// runPublish validates a rule or spec and puts it to Consul KV.
//
// A rule goes to KEY as it is. A spec goes to the spec key of KEY
// (graylane/spec/KEY) and its rendering against the live instances, the
// Nepxion XML rule every hop (Java or Go) reads, to KEY, in one
// transaction; `graylane orchestrate` keeps that rendering in step with the
// catalog from then on. With -local a spec goes to KEY itself instead, for
// fleets of graylane hops only, each of which expands it against its own
// view.
func runPublish(e *env, args []string) int {
	fs := newFlags("publish", "-key KEY [-cas INDEX] [-local] [-consul ADDR] FILE", e.stderr)
	key := fs.String("key", "", "the Consul KV `KEY` the services watch (Nepxion: <group>-<service> or <group>-<group>)")
	cas := fs.Int64("cas", -1, "check-and-set: write only if the document's key (KEY, or a spec's graylane/spec/KEY) has ModifyIndex `INDEX` (0: only if it does not exist)")
	local := fs.Bool("local", false, "put a spec itself to KEY, unrendered: graylane hops expand it each against its own view; Java hops cannot read it")
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
	var rendered *orch.Rendering
	if spec != nil {
		// A spec that cannot be orchestrated yet is still published: it is
		// rendered once the services have instances. Say so.
		inv, err := inventory(ctx, cl, where, spec.Services())
		if err != nil {
			e.errorf("publish", "%v", err)
			return exitFailed
		}
		rendered, err = orch.Render(spec, inv)
		switch {
		case errors.Is(err, rule.ErrNoInstances):
			then := "graylane orchestrate renders it to " + *key + " when they appear"
			if *local {
				then = "balancers keep the rule they have until it can be orchestrated"
			}
			fmt.Fprintf(e.stderr, "warning: %s: %v; %s\n", name, err, then)
		case err != nil:
			fmt.Fprint(e.stderr, docError(name, err))
			e.errorf("publish", "%s is invalid: not published", name)
			return exitFailed
		case len(rendered.Pending) > 0:
			fmt.Fprintf(e.stderr, "warning: %s: no live instances of %v: the rule leaves them unconstrained until they appear\n", name, rendered.Pending)
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
	if spec != nil && !*local {
		return publishSpec(ctx, e, cl, where, *key, name, data, rendered, *cas)
	}
	if spec == nil {
		// A hand-written rule over a rendered spec wins until the spec is
		// published again: worth a word.
		q := (&api.QueryOptions{}).WithContext(ctx)
		if p, _, err := cl.KV().Get(orch.SpecKey(*key), q); err == nil && p != nil {
			fmt.Fprintf(e.stderr, "warning: a spec is published at %s: graylane orchestrate leaves this rule in place until the spec is published again (delete that key to stop orchestrating)\n",
				orch.SpecKey(*key))
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
		kind = "spec, unrendered"
	}
	fmt.Fprintf(e.stdout, "published %s (%s, %d bytes) to %s at %s\n", name, kind, len(data), *key, where)
	return exitOK
}

// publishSpec puts a spec to the spec key of key and its rendering (when
// there is one) to key, in one transaction.
func publishSpec(ctx context.Context, e *env, cl *api.Client, where, key, name string, data []byte, rendered *orch.Rendering, cas int64) int {
	_, err := orch.Publish(ctx, cl, key, data, rendered, cas)
	if errors.Is(err, orch.ErrChanged) {
		e.errorf("publish", "key %q changed since index %d: not published (read it again, then retry)", orch.SpecKey(key), cas)
		return exitFailed
	}
	if err != nil {
		e.errorf("publish", "consul at %s: %v", where, err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "published %s (spec, %d bytes) to %s at %s\n", name, len(data), orch.SpecKey(key), where)
	if rendered != nil {
		fmt.Fprintf(e.stdout, "rendered it (rule, %d bytes) to %s\n", len(rendered.XML), key)
	}
	return exitOK
}
