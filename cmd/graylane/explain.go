package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/graylane/graylane/rule"
)

// samples is how many evenly spread draws explain feeds a gray decision to
// measure its split: 0.01% resolution.
const samples = 10000

func runExplain(e *env, args []string) int {
	fs := newFlags("explain", "(-rule FILE | -key KEY) [-H name=value]... [-service NAME]... [-request-first] [-consul ADDR]", e.stderr)
	ruleFile := fs.String("rule", "", "the rule or spec `FILE` (- for standard input)")
	key := fs.String("key", "", "read the rule or spec from this Consul KV `KEY`")
	var headers headerFlags
	fs.Var(&headers, "H", "a request value as `name=value` (header, query parameter or cookie, as #H['name'] sees it); repeat for more")
	var services listFlag
	fs.Var(&services, "service", "also show this service's constraints (repeat or comma-separate)")
	reqFirst := fs.Bool("request-first", false, "let the request's values beat the rule's built-in header (the balancer's WithHeaderPriority(rule.RequestFirst))")
	cf := addConsulFlags(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if (*ruleFile == "") == (*key == "") || len(pos) > 0 {
		e.errorf("explain", "want exactly one of -rule FILE and -key KEY")
		fs.Usage()
		return exitUsage
	}
	source := "key " + *key
	var data []byte
	var err error
	if *ruleFile != "" {
		source = displayName(*ruleFile)
		data, err = e.readInput(*ruleFile)
	} else {
		data, err = readKey(cf, *key)
	}
	if err != nil {
		e.errorf("explain", "%v", err)
		return exitFailed
	}
	r, spec, err := rule.ParseDocument(data)
	if err != nil {
		name := source
		if *key != "" {
			name = "consul:" + *key
		}
		fmt.Fprint(e.stderr, docError(name, err))
		return exitFailed
	}
	if spec != nil {
		if r, err = orchestrate(cf, spec); err != nil {
			e.errorf("explain", "%s: %v", source, err)
			return exitFailed
		}
		source += " (spec, orchestrated against the live instances)"
	}
	prio := rule.BuiltInFirst
	if *reqFirst {
		prio = rule.RequestFirst
	}
	explain(e.stdout, r, source, &headers, services, prio)
	return exitOK
}

// outcome is one value a route type took, and how often over the draws.
type outcome struct {
	value       rule.Value
	tier        rule.Tier
	cond, route string
	count       int
}

// explain prints the decision for one request: per route type, which part
// of the rule decided and the values it yields (with their shares when a
// gray condition draws by weight), then per service the constraint each
// type places on it.
func explain(w io.Writer, r *rule.Rule, source string, h *headerFlags, extra []string, prio rule.HeaderPriority) {
	values := rule.Map(h.values)
	var types []rule.RouteType
	for t := range rule.NumTypes {
		if t.Decided() {
			types = append(types, t)
		}
	}
	out := make([][]outcome, len(types))
	step := uint64(math.MaxUint64 / samples)
	for i := range samples {
		d := r.DecideWith(values, uint64(i)*step+step/2, prio)
		for ti, t := range types {
			o := outcome{value: d.Get(t)}
			if t == rule.TypeVersion {
				o.tier, o.cond, o.route = d.Tier, d.ConditionID, d.RouteID
			}
			out[ti] = tally(out[ti], o)
		}
	}

	fmt.Fprintf(w, "rule:     %s\n", source)
	if len(h.names) == 0 {
		fmt.Fprintf(w, "request:  (no values)\n")
	} else {
		fmt.Fprintf(w, "request:  %s\n", h.String())
	}
	if len(r.Release.Header) > 0 {
		var parts []string
		for _, f := range r.Release.Header {
			parts = append(parts, f.Name+"="+f.Value)
		}
		how := "replaces the request's values of the same name"
		if prio == rule.RequestFirst {
			how = "fills in names the request lacks"
		}
		fmt.Fprintf(w, "built-in header: %s (%s)\n", strings.Join(parts, " "), how)
	}
	if sticky := r.Release.Sticky; sticky != "" {
		if _, ok := h.values[sticky]; ok {
			fmt.Fprintf(w, "sticky:   %q is set, so the gray draw is fixed for it\n", sticky)
		}
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for ti, t := range types {
		os := out[ti]
		if len(os) == 1 && os[0].value.IsZero() {
			fmt.Fprintf(tw, "%s\tno constraint\n", t)
			continue
		}
		for k, o := range os {
			name := ""
			if k == 0 {
				name = t.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, describe(o, len(os) > 1), share(o.count), valueText(o.value))
		}
	}
	for _, x := range []struct {
		name string
		v    rule.Value
	}{
		{"id blacklist", r.Blacklist.ID},
		{"address blacklist", r.Blacklist.Address},
		{"version-prefer", r.Failover.VersionPrefer},
		{"version-failover", r.Failover.VersionFailover},
	} {
		if !x.v.IsZero() {
			fmt.Fprintf(tw, "%s\t%s\t\t%s\n", x.name, "from the rule", x.v)
		}
	}
	_ = tw.Flush()

	svcs := slices.Clone(extra)
	for ti := range types {
		for _, o := range out[ti] {
			for _, s := range o.value.Services() {
				if !slices.Contains(svcs, s) {
					svcs = append(svcs, s)
				}
			}
		}
	}
	if len(svcs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nby service:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range svcs {
		var parts []string
		for ti, t := range types {
			if p := perService(out[ti], s); p != "" {
				parts = append(parts, t.String()+" "+p)
			}
		}
		if len(parts) == 0 {
			parts = []string{"any instance"}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s, strings.Join(parts, "; "))
	}
	_ = tw.Flush()
}

func tally(os []outcome, o outcome) []outcome {
	for i := range os {
		if os[i].value.Equal(o.value) && os[i].tier == o.tier && os[i].cond == o.cond && os[i].route == o.route {
			os[i].count++
			return os
		}
	}
	o.count = 1
	return append(os, o)
}

// describe names the part of the rule behind an outcome (known for the
// version type).
func describe(o outcome, drawn bool) string {
	switch o.tier {
	case rule.TierBlueGreen:
		return "blue-green condition " + strconv.Quote(o.cond) + " -> " + o.route
	case rule.TierGray:
		return "gray condition " + strconv.Quote(o.cond) + " -> " + o.route
	case rule.TierStrategy:
		return "strategy"
	}
	if o.value.IsZero() {
		return "no constraint"
	}
	if drawn {
		return "drawn by weight"
	}
	return "from the rule"
}

func share(count int) string {
	if count == samples {
		return ""
	}
	return strconv.FormatFloat(float64(count)*100/samples, 'f', 1, 64) + "%"
}

func valueText(v rule.Value) string {
	if v.IsZero() {
		return "(none)"
	}
	return v.String()
}

// perService lists what the outcomes ask of one service, "" when none
// constrains it.
func perService(os []outcome, service string) string {
	type part struct {
		s     string
		count int
	}
	var parts []part
	constrained := false
	for _, o := range os {
		s, ok := o.value.For(service)
		if ok {
			constrained = true
		} else {
			s = "any"
		}
		found := false
		for i := range parts {
			if parts[i].s == s {
				parts[i].count += o.count
				found = true
			}
		}
		if !found {
			parts = append(parts, part{s, o.count})
		}
	}
	if !constrained {
		return ""
	}
	var b []string
	for _, p := range parts {
		if p.count == samples {
			b = append(b, p.s)
		} else {
			b = append(b, p.s+" ("+share(p.count)+")")
		}
	}
	return strings.Join(b, ", ")
}
