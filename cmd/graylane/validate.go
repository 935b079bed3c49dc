package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

func runValidate(e *env, args []string) int {
	fs := newFlags("validate", "[-q] FILE...", e.stderr)
	quiet := fs.Bool("q", false, "print nothing for valid documents")
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
