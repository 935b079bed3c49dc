// Package expr compiles the condition expressions of Nepxion Discovery's
// release rules, such as
//
//	#H['xyz'] == '1' && #H['age'] >= '18'
//
// once, and evaluates them on every request exactly as Nepxion does: with
// Spring SpEL, Nepxion's comparator (DiscoveryTypeComparator) and its
// exception handling (DiscoveryExpressionResolver), so that one rule routes
// the same way in Java and in Go. A differential test runs generated
// conditions through the real Spring SpEL engine and this package and
// requires them to agree, outside the deliberate differences listed below.
//
// # Use
//
// [Compile] an expression when a rule is loaded; call [Condition.Match] with
// the request's [Values] on each request. Match never fails and never
// panics, and is safe for concurrent use; it does not allocate, except to
// concatenate strings with +, to write a number computed by + as a
// string, to read a number written with non-ASCII digits, and to compile
// a pattern that comes from a value (on every evaluation). Values come
// from a [Map], from an HTTP request (the balancer reads query parameter,
// then cookie, then header, as Nepxion reads them), or from any source
// through [ValuesFunc].
//
// # Syntax
//
// The SpEL that conditions use:
//
//   - #H['name'] (or #H["name"]): the request's value called name;
//   - string literals in single or double quotes; a quote inside is written
//     twice, and a backslash is an ordinary character. As in Spring 4.3 to
//     5.x, a doubled quote of either kind is unescaped in either kind of
//     literal (see the last example below);
//   - number literals as SpEL reads them: int 42, long 10L, hex 0x1F (int)
//     and 0x1FL (long), double 1.5, 2e3, 2d, float 1.5f; an int or long
//     that does not fit is an error (so -2147483648 is, as in SpEL: the
//     minus applies to 2147483648);
//   - null, true, false;
//   - comparisons == != < <= > >= and their SpEL spellings eq ne lt le gt
//     ge; matches; x between {low, high};
//   - and, or, not, &&, ||, !, and parentheses;
//   - + (string concatenation and addition), unary + and -;
//   - the ternary operator a ? b : c and the Elvis operator a ?: b.
//
// For example:
//
//	#H['user'] == 'it''s me' or #H["user"] == "say ""hi"""
//	#H['path'] matches '/api/v\d+/.*'
//	not (#H['region'] == 'eu' and #H['age'] lt 18)
//	#H['age'] between {18, 65} and #H['vip']
//	#H['user'] == "it''s me"
//
// Keywords are matched in any case, as in SpEL (AND, Null). One comparison
// may stand between two logical operators: a < b < c is an error, as in
// SpEL, while (a == b) == (c == d) compares two booleans.
//
// # Meaning
//
// Values have Java's types: #H values and string literals are strings, and
// literals are Integer, Long, Float, Double or Boolean; null is what is
// missing.
//
//   - A name that is missing is null. So is a value that is blank (empty or
//     only white space): Nepxion reads only non-blank values into #H.
//   - Anything that throws in SpEL makes the whole condition false, as
//     Nepxion catches the exception: #H['a'] < 9 with a = "a1" is false,
//     and so are not (#H['a'] < 9) and #H['a'] < 9 or #H['b'] == '1'.
//     and, or, the ternary and Elvis operators and between evaluate only
//     what SpEL evaluates:
//     #H['b'] == '1' or #H['a'] < 9 holds when b is "1".
//   - == and != compare strings exactly and numbers by value (as SpEL: as
//     double if either side is a double, float if a float, long if a long);
//     a string never equals a number: #H['n'] == 2 is false for "2". null
//     equals only null.
//   - < <= > >= compare two numbers as == does; otherwise by Nepxion's
//     comparator: null is lowest, two values whose Java strings both read
//     as numbers (Java's new BigDecimal(s): an optional sign, digits, a
//     fraction, an exponent; any Unicode decimal digits) compare as
//     numbers, two strings in Java's order, and a string that is no number
//     against a number throws. So #H['age'] >= '18' is numeric.
//   - matches is Java's String.matches: java.util.regex syntax, the whole
//     string must match. The left side is converted to a string (null
//     throws); the pattern may be any string, #H['p'] included. A pattern
//     literal is compiled once, when compiling; see Patterns.
//   - A value used as a condition is converted as Spring converts a String
//     to a Boolean: true, on, yes and 1 are true, false, off, no and 0 are
//     false (trimmed, in any case); anything else throws. So #H['vip'] and
//     #H['vip'] and true are conditions. Numbers are no booleans. not binds
//     tighter than comparisons: not #H['a'] == '1' compares a boolean with
//     a string and is false.
//   - + adds two numbers in Java's arithmetic (ints wrap around), or joins a
//     string with the Java string of the other side (1.0E10, null, true).
//   - x between {low, high} is low <= x <= high by Nepxion's comparator.
//   - a ?: b is a unless a is null or the empty string.
//
// # Patterns
//
// Patterns mean what they mean in Java. They run on Go's regexp (RE2) after
// a translation where the two read a pattern differently: . excludes \r,
// U+0085, U+2028 and U+2029 besides \n (unless (?s); under (?d) only \n);
// \s is [ \t\n\x0B\f\r]; \h and \v are Java's horizontal and vertical
// white space; (?i) folds ASCII letters only unless (?u) is on too, and
// \p{Lu}, \p{Ll} and \p{Lt} then mean all cased letters; \0101 is octal;
// \uFFFF, \cX and \e are characters; \Q...\E quotes; $ matches only at the
// end. A pattern Java would reject is rejected when compiling, with an
// error that says why; so is a Java construct without a faithful
// translation, named in the error (see below).
//
// # Deliberate differences from Nepxion
//
// What SpEL parses but this package rejects when compiling, each with a
// message saying so ([Error.Unsupported] reports these). A rule carrying
// one still loads (package rule builds the condition with [Invalid]: it
// never holds, and the rule lists why), since Nepxion loads rules without
// compiling their expressions. In Nepxion these evaluate to false or make
// no sense in a condition:
//
//   - method and function calls (#H['a'].length(), max(1, 2), #f(1)),
//     property access (#H['a'].bytes), type references T(...),
//     constructors (new), assignment (=), instanceof, bean references
//     (@bean), collection selection and projection, inline lists and maps
//     except after between, indexing other than #H['name'], variables
//     other than #H, names other than true, false and null, #H[name]
//     without quotes, and empty parentheses;
//   - arithmetic other than + and unary minus: - * / % ^ div mod ++ --;
//   - patterns with constructs RE2 cannot express the Java way: back
//     references, look-ahead and look-behind, atomic groups, possessive
//     quantifiers (a++), class union and intersection ([a[b]],
//     [a-z&&[^e]]), \b and \B (Unicode-aware in Java), \Z, \G, \R, \X,
//     the flags (?m), (?x), (?U) and (?c), \p{...} other than Unicode
//     general categories (\p{Alpha}, \p{javaLowerCase}, \p{IsLatin}),
//     repetition counts above 1000, a $ followed by more pattern, and
//     patterns longer than 1,000 characters. Such a pattern taken from a
//     value at evaluation makes the condition false;
//   - a pattern literal Java cannot compile (an unclosed group, say):
//     Java fails every evaluation that reaches it; here compiling fails,
//     and the condition never holds, also where Java would not reach the
//     pattern (#H['a'] == '1' or #H['b'] matches '(' for a = "1");
//   - expressions longer than 4 KiB.
//
// And where the two engines' data differ: number literals and results are
// written with the shortest digits that read back (Java before 19
// sometimes writes one digit more); Unicode tables (decimal digits, general
// categories, case mappings) are Go's, which may be a newer Unicode
// version than the JVM's; and Spring aborts a match that makes a million
// character accesses (catastrophic backtracking), making the condition false, where RE2
// answers in linear time. Nepxion fills #H only for names written exactly
// #H['name'] with no white space inside the brackets, and its greedy name
// extraction misreads #H['a']=='1'&&#H['b']=='2' without spaces; this
// package reads what the rule says (graylane validate warns about both:
// [NepxionNames] and [Condition.Notes]).
//
// The differential test runs Debian's Spring 4.3, where Nepxion pins Spring
// 5.2; the two agree on everything conditions use (the tokenizer, the
// literals, the unescaping of quotes, the operators, the conversions).
//
// # Errors
//
// A rejected expression yields an *[Error] with the column of the offending
// token, counted in characters from 1, and a message that says what is
// wrong; [Error.Snippet] draws a caret under it.
//
// # Implementation
//
// A recursive descent parser that follows Spring's InternalSpelExpressionParser
// builds a small immutable tree, kept in one slice, that Match walks
// directly with values of Java's types held by value: no virtual machine,
// no pool, no allocation. The common comparisons (a value against a string
// or an integer literal) take a fast path that costs little more than the
// lookup of the value. So do most pattern literals: a row of single
// characters and ASCII classes with greedy counts (u-[0-9]{3,}) is matched
// in one pass without the regexp engine, where that pass cannot take a
// character the next item needs; any other pattern goes to regexp.
package expr
