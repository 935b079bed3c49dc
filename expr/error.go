package expr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is a compile error: what is wrong with an expression, and where.
//
// Compile returns an *Error for every rejected expression; use
// errors.As to read the position.
type Error struct {
	// Expr is the expression as it was given.
	Expr string
	// Offset is the byte offset in Expr of the token at fault; len(Expr)
	// when the expression ended too early.
	Offset int
	// Column is the 1-based column of that token, counted in characters
	// (runes), as an editor shows it.
	Column int
	// Msg says what is wrong, without the position.
	Msg string

	// unsupported marks a construct SpEL accepts and graylane rejects
	// deliberately (the documented list); other errors are expressions
	// SpEL cannot parse either, or patterns Java cannot compile.
	unsupported bool
}

// Unsupported reports whether the expression is valid SpEL that graylane
// rejects deliberately (a method call, a type reference, a pattern with no
// faithful translation: the documented list), rather than one SpEL cannot
// parse either or a pattern Java cannot compile. A Java hop evaluates the
// former; the latter throws there too.
func (e *Error) Unsupported() bool { return e.unsupported }

func newError(src string, offset int, format string, args ...any) *Error {
	offset = min(max(offset, 0), len(src))
	return &Error{
		Expr:   src,
		Offset: offset,
		Column: utf8.RuneCountInString(src[:offset]) + 1,
		Msg:    fmt.Sprintf(format, args...),
	}
}

// Error returns a one-line message: the column and what is wrong. It leaves
// out the expression, which callers usually name in their own context (as
// in `condition "c0": expression "...": column 12: unexpected ')'`); Expr
// and Snippet have it.
func (e *Error) Error() string {
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
}

// Snippet returns the expression and, under it, a caret at the column at
// fault, for showing to a person in a terminal or a log viewer with a fixed
// font. Line breaks and tabs in the expression are shown as spaces so that
// the caret lines up.
func (e *Error) Snippet() string {
	line := strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', '\t':
			return ' '
		}
		return r
	}, e.Expr)
	return line + "\n" + strings.Repeat(" ", max(e.Column-1, 0)) + "^"
}
