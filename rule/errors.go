package rule

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors that callers match with [errors.Is]. Every error returned
// by this package wraps one of them inside an [*Error].
var (
	// ErrSyntax means the document is not well-formed XML, JSON or YAML.
	ErrSyntax = errors.New("syntax error")
	// ErrInvalid means the document is well-formed but breaks the rule or
	// spec model: unknown element, missing or duplicate id, bad weights,
	// a bad expression, and so on.
	ErrInvalid = errors.New("invalid")
	// ErrNoInstances means a service named in a spec has no live instances,
	// so it cannot be orchestrated yet.
	ErrNoInstances = errors.New("no live instances")
	// ErrUnencodable means a rule holds text the target format cannot carry
	// (XML 1.0 has no way to write most control characters).
	ErrUnencodable = errors.New("cannot encode")
)

// Error is a rejected rule, spec or header value. It says where (the element
// path and, for documents, the line and column) and what is wrong.
type Error struct {
	// Path is the element path, for example
	// "strategy-release/conditions[type=gray]/condition[id=c1]/version-id".
	// Empty for errors about the whole document.
	Path string
	// Line and Column locate the problem in the document, 1-based; 0 when
	// unknown.
	Line, Column int
	// Msg says what is wrong.
	Msg string
	// Err is the sentinel ([ErrSyntax], [ErrInvalid], ...) and, where there
	// is one, the underlying cause such as an *expr.Error.
	Err error
}

// Error formats the error as "rule: line L, column C: path: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rule: ")
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column ")
			b.WriteString(strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel and cause.
func (e *Error) Unwrap() error { return e.Err }

// causeError joins a sentinel with a cause so both match errors.Is/As.
type causeError struct {
	sentinel, cause error
}

func (c *causeError) Error() string   { return c.cause.Error() }
func (c *causeError) Unwrap() []error { return []error{c.sentinel, c.cause} }

func withCause(sentinel, cause error) error {
	if cause == nil {
		return sentinel
	}
	return &causeError{sentinel, cause}
}

// dupSet detects repeated strings: a linear scan while small, a map beyond,
// so large documents are not quadratic.
type dupSet struct {
	small []string
	m     map[string]struct{}
}

// add records s and reports whether it was new.
func (d *dupSet) add(s string) bool {
	if d.m != nil {
		if _, ok := d.m[s]; ok {
			return false
		}
		d.m[s] = struct{}{}
		return true
	}
	for _, x := range d.small {
		if x == s {
			return false
		}
	}
	d.small = append(d.small, s)
	if len(d.small) > 16 {
		d.m = make(map[string]struct{}, 2*len(d.small))
		for _, x := range d.small {
			d.m[x] = struct{}{}
		}
	}
	return true
}
