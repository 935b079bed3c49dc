// Package expr compiles the condition expressions of Nepxion Discovery's
// release rules, such as
//
//	#H['xyz'] == '1' && #H['age'] >= '18'
//
// once, and evaluates them on every request, with the meaning they have in
// Nepxion (Spring SpEL with Nepxion's comparator), so that one rule routes
// the same way in Java and in Go.
//
// # Use
//
// [Compile] an expression when a rule is loaded; call [Condition.Match] with
// the request's [Values] on each request. Match never fails and never
// panics, does not allocate, and is safe for concurrent use. Values come
// from a [Map], from an HTTP request (the balancer reads query parameter,
// then cookie, then header, as Nepxion reads them), or from any source
// through [ValuesFunc].
//
// # Syntax
//
// The supported subset of SpEL is what Nepxion's conditions use:
//
//   - #H['name'] (or #H["name"]): the request's value called name;
//   - string literals in single or double quotes; a quote inside is written
//     twice, and a backslash is an ordinary character (see below);
//   - number literals: 42, -7, 10L, 0x1F, 1.5, 2e3, 1.5f, 2d;
//   - null, true, false;
//   - comparisons == != < <= > >= and their SpEL spellings eq ne lt le gt ge;
//   - matches 'regex';
//   - and, or, not, &&, ||, !, and parentheses.
//
// For example:
//
//	#H['user'] == 'it''s me' or #H["user"] == "say ""hi"""
//	#H['path'] matches '/api/v\d+/.*'
//	not (#H['region'] == 'eu' and #H['age'] lt 18)
//
// Keywords are matched in any case, as in SpEL (AND, Null). One comparison
// may stand between two logical operators: a < b < c is an error, as in
// SpEL, while (a == b) == (c == d) compares two conditions. Anything else
// SpEL offers (arithmetic, method calls, other variables, the ternary
// operator) is rejected with an error that says so.
//
// # Meaning
//
//   - A name that is missing is null. So is a value that is blank (empty or
//     only white space): Nepxion reads only non-blank headers into #H.
//   - == and != against a string literal compare the exact strings:
//     '1.0' == '1' is false. Against a number literal they compare as
//     numbers: #H['n'] == 1 holds for "1", "1.0" and "+1", and not for "x".
//     (SpEL itself never finds a string equal to a number; comparing as
//     numbers is what such a rule means.)
//   - null equals only null: #H['missing'] == 'x' is false,
//     #H['missing'] != 'x' is true, #H['missing'] == null is true.
//   - < <= > >= compare as decimal numbers when both sides read as numbers
//     (in the syntax of Java's BigDecimal), else as strings in Java's order,
//     so #H['age'] >= '18' is numeric. null sorts lowest:
//     #H['missing'] < '5' is true, as Nepxion's comparator has it. A number
//     literal against a value that is no number cannot be compared, which
//     in Java is an error; here the comparison is false.
//   - matches is a whole-string match (Java's String.matches):
//     'xab1' matches 'ab[0-9]' is false. null never matches. The pattern must
//     be a string literal, compiled once. Patterns are RE2 (Go's regexp),
//     which covers the Java patterns conditions use; Java-only features
//     (look-around, backreferences, possessive quantifiers, class union and
//     intersection, \v) are rejected when compiling, never misread.
//
// A condition must yield true or false: #H['a'] alone, or #H['a'] and true,
// is an error, where Java would try to convert the string.
//
// # Errors
//
// A rejected expression yields an *[Error] with the column of the offending
// token, counted in characters from 1, and a message that says what is
// wrong; [Error.Snippet] draws a caret under it. Expressions are limited to
// 4 KiB (4,096 bytes of UTF-8), and patterns to 1,000 characters, the limit
// SpEL applies.
//
// # Implementation
//
// expr-lang/expr does not accept #H, and its operators mean other things
// than SpEL's, so an expression is translated before expr-lang parses it:
// SpEL is tokenized here, every operand becomes a placeholder, and
// expr-lang's parser gives the precedence and the tree. A checker written
// for SpEL's meaning (expr-lang's type checker knows other types) walks
// that tree, checks what each operator is given, and compiles every
// comparison once, its literals decoded and its pattern compiled. What is
// left is a small immutable tree of and, or, not and comparisons, kept in
// one slice and evaluated directly by Match, short-circuiting and and or:
// no virtual machine, no pool, no allocation, and a single comparison such
// as #H['xyz'] == '1' costs little more than the lookup of its value.
package expr
