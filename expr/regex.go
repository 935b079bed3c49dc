package expr

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// compilePattern compiles the pattern of a matches operator. SpEL's matches
// is Java's String.matches: the whole string must match, so the pattern is
// anchored at both ends. Go's RE2 syntax covers the Java patterns people
// write in conditions; the Java-only features RE2 lacks (backreferences,
// look-around, possessive quantifiers) fail to compile, and the ones RE2
// would silently read differently are rejected here.
func compilePattern(p string) (*regexp.Regexp, error) {
	if n := utf8.RuneCountInString(p); n > maxPatternLength {
		return nil, fmt.Errorf("pattern is %d characters long, more than the %d allowed", n, maxPatternLength)
	}
	if err := checkJavaOnly(p); err != nil {
		return nil, err
	}
	// Compile the pattern alone first so that an error quotes what the user
	// wrote; once it compiles, so does the anchored form.
	if _, err := regexp.Compile(p); err != nil {
		// regexp's messages start with "error parsing regexp: ".
		return nil, fmt.Errorf("bad pattern: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// checkJavaOnly rejects the Java pattern syntax that RE2 accepts with another
// meaning: class intersection ([a-z&&[^e]]), class union ([a[bc]]), and \v
// (Java: any vertical white space; RE2: the vertical tab only).
func checkJavaOnly(p string) error {
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 < len(p) {
				i++
				if p[i] == 'v' {
					return fmt.Errorf(`bad pattern: \v means vertical white space in Java but a vertical tab here; write [\n\x0B\f\r] or \x0B`)
				}
				if p[i] == 'Q' { // \Q...\E quotes everything up to \E
					end := strings.Index(p[i:], `\E`)
					if end < 0 {
						return nil
					}
					i += end + 1
				}
			}
		case !inClass && c == '[':
			inClass = true
			// A ']' right after '[' or '[^' is a literal in both dialects.
			if i+1 < len(p) && p[i+1] == '^' {
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				i++
			}
		case inClass && c == ']':
			inClass = false
		case inClass && c == '[':
			if i+1 < len(p) && p[i+1] == ':' { // [[:alpha:]]: a POSIX class here, a union in Java
				return fmt.Errorf("bad pattern: [[:name:]] means a POSIX class here but a class union in Java; write ranges such as [a-zA-Z]")
			}
			return fmt.Errorf("bad pattern: nested character classes (Java's class union) are not supported; list the characters in one class")
		case inClass && c == '&' && i+1 < len(p) && p[i+1] == '&':
			return fmt.Errorf("bad pattern: && inside a character class (Java's class intersection) is not supported")
		}
	}
	return nil
}
