package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/internal/pattern"
	"github.com/graylane/graylane/internal/version"
	"github.com/graylane/graylane/rule"
)

func runValidate(e *env, args []string) int {
	fs := newFlags("validate", "[-q] [-strict] FILE...", e.stderr)
	quiet := fs.Bool("q", false, "print nothing for valid documents (warnings are still printed)")
	strict := fs.Bool("strict", false, "treat warnings (where a Java hop reads the rule differently) as errors")
	files, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 {
		e.errorf("validate", "no file given")
		fs.Usage()
		return exitUsage
	}
	status := exitOK
	for _, name := range files {
		data, err := e.readInput(name)
		if err != nil {
			e.errorf("validate", "%v", err)
			status = exitFailed
			continue
		}
		r, s, err := rule.ParseDocument(data)
		if err != nil {
			fmt.Fprint(e.stderr, docError(displayName(name), err))
			status = exitFailed
			continue
		}
		var warns []warning
		if r != nil {
			warns = nepxionWarnings(data, r)
		}
		kind := "warning"
		if *strict {
			kind = "error"
		}
		for _, w := range warns {
			fmt.Fprint(e.stderr, w.format(displayName(name), kind))
		}
		if *strict && len(warns) > 0 {
			status = exitFailed
			continue
		}
		if !*quiet {
			fmt.Fprintf(e.stdout, "%s: %s\n", displayName(name), summary(r, s))
		}
	}
	return status
}

// docError formats a rejected document the way compilers do, so editors
// and CI logs link to the place: "file:line:col: path: what", then the
// expression with a caret under the fault when an expression is at fault.
func docError(file string, err error) string {
	var b strings.Builder
	b.WriteString(file)
	var re *rule.Error
	if !errors.As(err, &re) {
		b.WriteString(": " + err.Error() + "\n")
		return b.String()
	}
	if re.Line > 0 {
		b.WriteString(":" + strconv.Itoa(re.Line))
		if re.Column > 0 {
			b.WriteString(":" + strconv.Itoa(re.Column))
		}
	}
	b.WriteString(": ")
	if re.Path != "" {
		b.WriteString(re.Path + ": ")
	}
	b.WriteString(re.Msg + "\n")
	var ee *expr.Error
	if errors.As(err, &ee) {
		for line := range strings.SplitSeq(ee.Snippet(), "\n") {
			b.WriteString("\t" + line + "\n")
		}
	}
	return b.String()
}

// summary describes a valid document in one line.
func summary(r *rule.Rule, s *rule.Spec) string {
	if s != nil {
		msg := "valid spec: services " + strings.Join(s.Service, ", ")
		if n := len(s.BlueGreen); n > 0 {
			msg += "; " + plural(n, "blue-green entry", "blue-green entries")
		}
		if n := len(s.Gray); n > 0 {
			msg += "; " + plural(n, "gray entry", "gray entries")
		}
		if len(s.Header) > 0 {
			msg += "; built-in header"
		}
		return msg + "; sort " + s.Sort.String()
	}
	var parts []string
	var strategy []string
	for t := range rule.NumTypes {
		if t.Decided() && !r.Strategy.Get(t).IsZero() {
			strategy = append(strategy, t.String())
		}
	}
	if len(strategy) > 0 {
		parts = append(parts, "strategy "+strings.Join(strategy, ", "))
	}
	if n := len(r.Release.BlueGreen); n > 0 {
		parts = append(parts, plural(n, "blue-green condition", "blue-green conditions"))
	}
	if n := len(r.Release.Gray); n > 0 {
		parts = append(parts, plural(n, "gray condition", "gray conditions"))
	}
	if n := len(r.Release.Routes); n > 0 {
		parts = append(parts, plural(n, "route", "routes"))
	}
	if len(r.Release.Header) > 0 {
		parts = append(parts, "built-in header")
	}
	if len(r.Ignored) > 0 {
		parts = append(parts, "ignored sections "+strings.Join(r.Ignored, ", "))
	}
	if len(parts) == 0 {
		return "valid rule (empty: plain load balancing)"
	}
	return "valid rule: " + strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// versionValues calls f with every version value r routes by (the
// <strategy> version and version-weight, and version and version-weight
// routes; failover values are fallbacks, not routes) and whether it is a
// weight list.
func versionValues(r *rule.Rule, f func(v rule.Value, weighted bool)) {
	f(r.Strategy.Version, false)
	f(r.Strategy.VersionWeight, true)
	for _, rt := range r.Release.Routes {
		switch rt.Type {
		case rule.TypeVersion:
			f(rt.Value, false)
		case rule.TypeVersionWeight:
			f(rt.Value, true)
		}
	}
}

// routedServices returns the services r's version values name, in order.
func routedServices(r *rule.Rule) []string {
	var out []string
	versionValues(r, func(v rule.Value, _ bool) {
		for _, s := range v.Services() {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	})
	return out
}

// unrunWarnings returns one line per service in inv that r routes to
// versions none of its live instances runs (an alternative with wildcards
// counts as run when it matches one): such a rule is valid, and requests
// routed there fail or fail over.
func unrunWarnings(r *rule.Rule, inv rule.Inventory) []string {
	var out []string
	for _, svc := range slices.Sorted(maps.Keys(inv)) {
		var live []string
		for _, in := range inv[svc] {
			v := strings.TrimSpace(in.Version)
			if v == "" {
				v = rule.DefaultVersion
			}
			if !slices.Contains(live, v) {
				live = append(live, v)
			}
		}
		var missing []string
		add := func(alt string) {
			alt = strings.TrimSpace(alt)
			if alt == "" || slices.Contains(missing, alt) {
				return
			}
			if m := pattern.Compile(alt); slices.ContainsFunc(live, m.Match) {
				return
			}
			missing = append(missing, alt)
		}
		versionValues(r, func(v rule.Value, weighted bool) {
			s, ok := v.For(svc)
			if !ok {
				return
			}
			if !weighted {
				for alt := range strings.SplitSeq(s, ";") {
					add(alt)
				}
				return
			}
			ws, _ := rule.ParseWeights(s)
			for _, w := range ws {
				if w.Weight > 0 {
					add(w.Key)
				}
			}
		})
		switch {
		case len(missing) == 0:
		case len(live) == 0:
			out = append(out, fmt.Sprintf("%s has no live instances; the rule routes it to %s", svc, strings.Join(missing, ", ")))
		default:
			slices.SortFunc(live, version.Compare)
			out = append(out, fmt.Sprintf("no live instance of %s runs %s, which the rule routes to (live: %s)",
				svc, strings.Join(missing, ", "), strings.Join(live, ", ")))
		}
	}
	return out
}

// discoveryWarnings warns where the <discovery> section's host and region
// filters read differently on a Java hop: a host or provider region value
// with '*' or '?' is a wildcard pattern for graylane and literal text for
// Nepxion (which compares hosts with startsWith and regions exactly; a
// consumer-region-value both compare exactly), and a host filter
// <service service-name> with upper-case letters names its provider
// without regard to case for graylane, exactly for Nepxion (a map key).
func discoveryWarnings(data []byte, r *rule.Rule) []warning {
	d := &r.Discovery
	var out []warning
	add := func(needle, msg string) {
		line, col := locateAfter(data, "discovery", needle)
		out = append(out, warning{line, col, msg})
	}
	const wild = "*?"
	if h := d.Hosts; h != nil {
		elem := "blacklist"
		if h.Whitelist {
			elem = "whitelist"
		}
		check := func(needle string, hosts []string) {
			for _, v := range hosts {
				if strings.ContainsAny(v, wild) {
					add(needle, fmt.Sprintf("discovery %s value %q: '*' and '?' are wildcards in graylane; Nepxion matches them as text (host prefixes)", elem, v))
				}
			}
		}
		check("<"+elem, h.Hosts)
		for _, s := range h.Services {
			if s.Service != strings.ToLower(s.Service) {
				add(s.Service, fmt.Sprintf("discovery %s service-name %q: graylane matches it to the provider without regard to case; Nepxion exactly", elem, s.Service))
			}
			check(s.Service, s.Hosts)
		}
	}
	// Only the provider regions are patterns for graylane: it compares a
	// caller's region with consumer-region-value exactly, as Nepxion does.
	for _, f := range d.Regions {
		for _, v := range f.ProviderRegions {
			if strings.ContainsAny(v, wild) {
				add(v, fmt.Sprintf("discovery region value %q (%s -> %s): '*' and '?' are wildcards in graylane; Nepxion matches regions as text", v, f.Consumer, f.Provider))
			}
		}
	}
	return out
}

// locateAfter finds needle in data after the first mention of section
// (as an XML element or a JSON or YAML key), where locate would find an
// earlier one in another section; the section itself when needle does not
// follow it, 0, 0 when there is no section.
func locateAfter(data []byte, section, needle string) (line, col int) {
	start := -1
	for _, s := range []string{"<" + section, `"` + section, section + ":"} {
		if i := bytes.Index(data, []byte(s)); i >= 0 && (start < 0 || i < start) {
			start = i
		}
	}
	if start < 0 {
		return 0, 0
	}
	off := start
	if i := bytes.Index(data[start:], []byte(needle)); i >= 0 {
		off += i
	}
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = utf8.RuneCount(data[bytes.LastIndexByte(data[:off], '\n')+1:off]) + 1
	return line, col
}
