package rule

import (
	"errors"
	"strconv"
	"strings"
)

// Errors and positions: every rejected input becomes an *Error with the
// element path and, where known, the line and column. The readers compute
// positions with lineIndex; the builders report with invalid and syntaxErr.

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

// lineIndex converts byte offsets to 1-based line and column (in bytes).
type lineIndex struct {
	data  []byte
	off   int
	line  int
	lineS int // offset where the current line starts
}

func newLineIndex(data []byte) *lineIndex { return &lineIndex{data: data, line: 1} }

// at returns the position of offset off; offsets must not decrease between
// calls unless reset.
func (li *lineIndex) at(off int) pos {
	if off < li.off {
		li.off, li.line, li.lineS = 0, 1, 0
	}
	if off > len(li.data) {
		off = len(li.data)
	}
	for ; li.off < off; li.off++ {
		if li.data[li.off] == '\n' {
			li.line++
			li.lineS = li.off + 1
		}
	}
	return pos{li.line, off - li.lineS + 1}
}

func syntaxErr(at pos, msg string, cause error) *Error {
	return &Error{Line: at.line, Column: at.col, Msg: msg, Err: withCause(ErrSyntax, cause)}
}

type pos struct{ line, col int }

func invalid(at pos, path, msg string) *Error {
	return &Error{Path: path, Line: at.line, Column: at.col, Msg: msg, Err: ErrInvalid}
}

// pick returns the first known position.
func pick(ps ...pos) pos {
	for _, p := range ps {
		if p.line > 0 {
			return p
		}
	}
	return pos{}
}

// Position returns where the condition is written in the document it was
// parsed from: 1-based line and column, 0 and 0 when unknown (a rule built
// in code or orchestrated). Tools such as graylane validate point there.
func (c *Condition) Position() (line, col int) { return c.at.line, c.at.col }

// ExpressionPosition returns where the condition's expression is written:
// its attribute or field, else the condition (see [Condition.Position]).
func (c *Condition) ExpressionPosition() (line, col int) {
	at := pick(c.exprAt, c.at)
	return at.line, at.col
}

// Position returns where the route is written in the document it was
// parsed from, as [Condition.Position] does.
func (rt *Route) Position() (line, col int) { return rt.at.line, rt.at.col }
