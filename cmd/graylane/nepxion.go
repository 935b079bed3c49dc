package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// Warnings of graylane validate: the places where a Nepxion (Java) hop
// reads a rule differently from a graylane hop, or where both read it the
// same but not the way the text suggests. A rule with warnings is valid.

// warning is one finding, at a place in the document (line 0: unknown).
type warning struct {
	line, col int
	msg       string
}

// format writes the warning the way compilers do: "file:line:col: kind: msg".
func (w warning) format(file, kind string) string {
	var b strings.Builder
	b.WriteString(file)
	if w.line > 0 {
		b.WriteString(":" + strconv.Itoa(w.line))
		if w.col > 0 {
			b.WriteString(":" + strconv.Itoa(w.col))
		}
	}
	b.WriteString(": " + kind + ": " + w.msg + "\n")
	return b.String()
}

// nepxionWarnings returns the warnings for r, parsed from data, in the
// order of the document.
func nepxionWarnings(data []byte, r *rule.Rule) []warning {
	var out []warning
	for _, list := range []struct {
		typ   string
		conds []rule.Condition
	}{{"blue-green", r.Release.BlueGreen}, {"gray", r.Release.Gray}} {
		for i := range list.conds {
			c := &list.conds[i]
			where := list.typ + " condition " + strconv.Quote(c.ID)
			if c.Expression.Err() != nil {
				out = append(out, brokenExpression(where, c))
			} else if c.Expression != nil {
				line, col := c.ExpressionPosition()
				src := c.Expression.String()
				for _, n := range c.Expression.Notes() {
					out = append(out, warning{line, col, fmt.Sprintf("%s: expression column %d: %s",
						where, utf8.RuneCountInString(src[:n.Offset])+1, n.Msg)})
				}
			}
			if list.typ == "gray" {
				line, col := c.Position()
				for _, id := range []struct{ attr, val string }{
					{"version-weight-id", c.VersionWeightID}, {"region-weight-id", c.RegionWeightID},
				} {
					if id.val != "" {
						out = append(out, warning{line, col, where + ": " + id.attr +
							" is ignored on gray conditions, by Nepxion and by graylane: weigh versions or regions with version-id or region-id weights"})
					}
				}
			}
		}
	}
	out = append(out, unsortedWarning(r)...)
	out = append(out, shareWarnings(data, r)...)
	out = append(out, discoveryWarnings(data, r)...)
	for _, path := range r.Ignored {
		if strings.Contains(path, "/expression: never holds: ") {
			continue // the expression warning above says it
		}
		if strings.Contains(path, "conditions[type=gray]") &&
			(strings.Contains(path, "/version-weight-id") || strings.Contains(path, "/region-weight-id")) {
			continue // the gray weight id warning above says it
		}
		line, col := locate(data, path)
		out = append(out, warning{line, col, "ignored by graylane (a Java hop may use it): " + path})
	}
	slices.SortStableFunc(out, func(a, b warning) int {
		if a.line != b.line {
			return a.line - b.line
		}
		return a.col - b.col
	})
	return out
}

// unsortedWarning warns when the routes come before the conditions in the
// document and sorting changes the order of a condition list: Nepxion
// sorts the conditions (more #H[' first) as a side effect of setting the
// routes, so a Java hop then tries them in document order, graylane in
// sorted order.
func unsortedWarning(r *rule.Rule) []warning {
	first := [2]int{}
	for i := range r.Release.Routes {
		if l, c := r.Release.Routes[i].Position(); l > 0 && (first[0] == 0 || l < first[0] || l == first[0] && c < first[1]) {
			first = [2]int{l, c}
		}
	}
	if first[0] == 0 {
		return nil
	}
	var lists []string
	for _, list := range []struct {
		typ   string
		conds []rule.Condition
	}{{"blue-green", r.Release.BlueGreen}, {"gray", r.Release.Gray}} {
		if len(list.conds) == 0 {
			continue
		}
		l, c := list.conds[0].Position()
		if l == 0 || l < first[0] || l == first[0] && c < first[1] {
			continue // conditions first: Nepxion sorts them too
		}
		spec := make([]int, len(list.conds))
		for i := range list.conds {
			spec[i] = specificity(&list.conds[i])
		}
		if !slices.IsSortedFunc(spec, func(a, b int) int { return b - a }) {
			lists = append(lists, list.typ)
		}
	}
	if len(lists) == 0 {
		return nil
	}
	return []warning{{first[0], first[1], "routes are listed before the " + strings.Join(lists, " and ") +
		" conditions: a Java hop then tries the conditions in document order, graylane in Nepxion's sorted order (more #H['...'] first); list the conditions first"}}
}

// specificity is how Nepxion ranks a condition (rule/order.go): the count
// of #H[' in its expression, -1 without one.
func specificity(c *rule.Condition) int {
	if c.Expression == nil {
		return -1
	}
	return strings.Count(c.Expression.String(), "#H['")
}

// shareWarnings warns about version and region weights: graylane splits
// requests per version (or region), then picks an instance in it; Nepxion
// weighs each instance, so a version with more instances gets more than
// its share.
func shareWarnings(data []byte, r *rule.Rule) []warning {
	const msg = " weights split requests per %s in graylane; Nepxion weighs instances, so a %s with more instances gets more than its share"
	var out []warning
	for _, t := range []rule.RouteType{rule.TypeVersionWeight, rule.TypeRegionWeight} {
		what := strings.TrimSuffix(t.String(), "-weight")
		if !r.Strategy.Get(t).IsZero() {
			line, col := locate(data, "strategy/"+t.String())
			out = append(out, warning{line, col, "strategy " + t.String() + ":" + fmt.Sprintf(msg, what, what)})
		}
		for i := range r.Release.Routes {
			rt := &r.Release.Routes[i]
			if rt.Type == t {
				line, col := rt.Position()
				out = append(out, warning{line, col, "route " + strconv.Quote(rt.ID) + ":" + fmt.Sprintf(msg, what, what)})
			}
		}
	}
	return out
}

// locate finds, as well as the text allows, where an element path of
// Rule.Ignored ("register", "strategy-release/foo", ".../condition[id=c]@value",
// "path: note") is written: the first <name or name= (XML) or "name" (JSON)
// of its last step. It returns 0, 0 when it cannot tell.
func locate(data []byte, path string) (line, col int) {
	path, _, _ = strings.Cut(path, ": ")
	if strings.HasPrefix(path, "<") {
		path = strings.TrimPrefix(path[:strings.IndexByte(path+">", '>')], "<")
	}
	last := path[strings.LastIndexByte(path, '/')+1:]
	var needles []string
	if base, attr, ok := strings.Cut(last, "@"); ok {
		needles = []string{" " + attr + "=", `"` + attr + `"`}
		last = base
	} else {
		if i := strings.IndexByte(last, '['); i >= 0 {
			last = last[:i]
		}
		needles = []string{"<" + last, `"` + last + `"`, last + ":", " " + last + "="}
	}
	off := -1
	for _, n := range needles {
		if i := bytes.Index(data, []byte(n)); i >= 0 && (off < 0 || i < off) {
			off = i
		}
	}
	if off < 0 || last == "" {
		return 0, 0
	}
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = utf8.RuneCount(data[bytes.LastIndexByte(data[:off], '\n')+1:off]) + 1
	return line, col
}

// brokenExpression is the warning for a condition whose expression did not
// compile: the rule loads, and the condition never holds on a graylane hop.
func brokenExpression(where string, c *rule.Condition) warning {
	err := c.Expression.Err()
	line, col := c.ExpressionPosition()
	msg := where + ": expression never holds on a graylane hop"
	var ee *expr.Error
	if errors.As(err, &ee) && ee.Unsupported() {
		msg += " (graylane does not support it; a Java hop evaluates it)"
	} else {
		msg += " (nor on a Java hop: its evaluation throws there)"
	}
	msg += ": " + err.Error()
	if ee != nil {
		for l := range strings.SplitSeq(ee.Snippet(), "\n") {
			msg += "\n\t" + l
		}
	}
	return warning{line, col, msg}
}

// brokenExpressions returns the warnings for r's conditions whose
// expression did not compile (none for a nil rule, such as a spec's).
func brokenExpressions(r *rule.Rule) []warning {
	if r == nil {
		return nil
	}
	var out []warning
	for _, list := range []struct {
		typ   string
		conds []rule.Condition
	}{{"blue-green", r.Release.BlueGreen}, {"gray", r.Release.Gray}} {
		for i := range list.conds {
			if c := &list.conds[i]; c.Expression.Err() != nil {
				out = append(out, brokenExpression(list.typ+" condition "+strconv.Quote(c.ID), c))
			}
		}
	}
	return out
}
