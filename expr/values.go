package expr

// Values gives an expression the values of one request by name: what
// #H['name'] reads.
//
// Lookup reports whether the name is present. Implementations used with
// [Condition.Match] on a hot path should not allocate; the ones in this
// package don't. (The HTTP request lookup, query parameter, then cookie,
// then header, belongs to the HTTP side: package balancer.)
type Values interface {
	Lookup(name string) (value string, ok bool)
}

// Map is Values held in a map, with names matched exactly.
type Map map[string]string

// Lookup returns m[name].
func (m Map) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// ValuesFunc adapts a function to Values, for sources such as gRPC metadata.
type ValuesFunc func(name string) (string, bool)

// Lookup calls f(name).
func (f ValuesFunc) Lookup(name string) (string, bool) { return f(name) }

// Blank reports whether a request value is blank: empty or only white
// space in the sense of Java's Character.isWhitespace. Nepxion counts only
// values that are not blank (StringUtils.isNotBlank): #H['name'] reads a
// blank value as null, and a source whose value is blank passes the name
// on to the next source.
func Blank(s string) bool { return isBlank(s) }
