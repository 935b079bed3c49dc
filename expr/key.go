package expr

// Key is a compiled key expression: one request value, written #H['name'],
// whose value keys a decision, such as the user id that keeps a user's
// weighted gray draw the same on every request. A Key is immutable and safe
// for concurrent use.
type Key struct {
	src  string
	name string
}

// CompileKey compiles a key expression: a single #H['name'], optionally in
// parentheses. It returns an *[Error] for anything else.
func CompileKey(src string) (*Key, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	toks = toks[:len(toks)-1] // drop EOF
	for len(toks) > 2 && toks[0].kind == tLParen && toks[len(toks)-1].kind == tRParen {
		toks = toks[1 : len(toks)-1]
	}
	if toks[0].kind != tLookup {
		return nil, newError(src, toks[0].pos, "a key is one request value, as in #H['user-id']; found %s", src[toks[0].pos:toks[0].end])
	}
	if len(toks) > 1 {
		return nil, newError(src, toks[1].pos, "a key is one request value, as in #H['user-id']; unexpected %s after it", src[toks[1].pos:toks[1].end])
	}
	return &Key{src: src, name: toks[0].val}, nil
}

// Eval returns the key's value for a request, and false when the value is
// missing or blank (empty or white space only), as conditions treat it.
func (k *Key) Eval(v Values) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := v.Lookup(k.name)
	if !ok || isBlank(s) {
		return "", false
	}
	return s, true
}

// Name returns the name the key reads, the name in #H['name'].
func (k *Key) Name() string { return k.name }

// String returns the expression as it was written.
func (k *Key) String() string { return k.src }
