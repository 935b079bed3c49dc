package rule

import (
	"slices"
	"strconv"
	"strings"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/internal/version"
)

// Orchestration specs: the model, reading and writing.

// DefaultVersion is the version of an instance that declares none. It always
// counts as the oldest (stable) version.
const DefaultVersion = version.Default

// Side is one of the two routes orchestration builds.
type Side uint8

const (
	// SideOld is route-0, the stable (oldest) versions. Nepxion calls it
	// "green"; "old" is accepted as a clearer alias.
	SideOld Side = iota
	// SideNew is route-1, the new versions. Nepxion calls it "blue"; "new"
	// is accepted as an alias.
	SideNew
)

// String returns Nepxion's name for the side: "green" or "blue".
func (s Side) String() string {
	if s == SideNew {
		return "blue"
	}
	return "green"
}

// Sort says how a service's live versions are ordered to find the old one.
type Sort uint8

const (
	// SortVersion orders by version string, comparing runs of digits as
	// numbers ("1.9" before "1.10"); for timestamps and same-length numbers
	// that is plain string order. Nepxion's console compares plain strings
	// (1.10 before 1.9); graylane deliberately does not, since 1.10 is the
	// newer release.
	SortVersion Sort = iota
	// SortTime orders by the earliest start time among each version's
	// instances, for version names that do not sort ("base", "gray").
	SortTime
)

// String returns "version" or "time".
func (s Sort) String() string {
	if s == SortTime {
		return "time"
	}
	return "version"
}

// Spec is an orchestration spec (Nepxion's "full-chain intelligent
// orchestration" input): the services of a chain and business conditions;
// [Orchestrate] expands it with the live versions into a full [Rule].
type Spec struct {
	// Service lists the services of the chain, in order.
	Service []string
	// BlueGreen is either empty or one entry per side: exactly one old
	// (green) and one new (blue).
	BlueGreen []BlueGreenEntry
	// Gray entries become gray conditions splitting traffic old/new.
	Gray []GrayEntry
	// Header is the built-in header copied into the rule.
	Header Header
	// Sort orders each service's versions; SortVersion by default.
	Sort Sort
	// Sticky optionally names the request value whose hash replaces the
	// random draw for gray conditions (see [Release.Sticky]). An extension
	// to Nepxion's spec.
	Sticky string
}

// BlueGreenEntry sends requests matching Expression to one side. The
// expression is required, as Nepxion's console requires it.
type BlueGreenEntry struct {
	Expression string
	Route      Side
}

// GrayEntry splits requests matching Expression between the sides:
// Weight[0] to the old route, Weight[1] to the new.
type GrayEntry struct {
	Expression string // empty: the default when no other entry matches
	Weight     [2]int
}

// Services returns a copy of the spec's service list; the balancer watches
// these and orchestrates again when their versions change.
func (s *Spec) Services() []string { return slices.Clone(s.Service) }

var specKeys = []string{"service", "blueGreen", "gray", "header", "sort", "sticky"}

// ParseSpec reads an orchestration spec written as YAML or JSON (JSON may
// carry // and /* */ comments, as Nepxion's own examples do):
//
//	service: [svc-a, svc-b]
//	blueGreen:
//	  - {expression: "#H['xyz'] == '1'", route: green}
//	  - {expression: "#H['xyz'] == '2'", route: blue}
//	gray:
//	  - {expression: "#H['xyz'] == '3'", weight: [90, 10]}
//	  - {weight: [100, 0]}
//	header: {xyz: 1}
//	sort: version
//
// Expressions are compiled to check them. Unknown keys are rejected, so a
// misspelt key does not silently drop a condition.
func ParseSpec(data []byte) (*Spec, error) {
	if err := checkSize(data); err != nil {
		return nil, err
	}
	f, data := detect(data)
	if f == formatXML {
		return nil, &Error{Line: 1, Column: 1, Msg: "an orchestration spec is YAML or JSON, not XML", Err: ErrSyntax}
	}
	root, err := readTree(f, data)
	if err != nil {
		return nil, err
	}
	return treeSpec(root)
}

// treeSpec reads a spec from its JSON or YAML tree, remembering where each
// part was for the checks that follow.
func treeSpec(root *tnode) (*Spec, error) {
	s := &Spec{}
	at := map[string]pos{}
	err := eachKey(root, "", specKeys, func(k string, v *tnode, _ pos) error {
		at[k] = v.at
		switch k {
		case "service":
			return s.readService(v, at)
		case "blueGreen":
			return treeEntries(v, k, at, s.readBlueGreen(at))
		case "gray":
			return treeEntries(v, k, at, s.readGray(at))
		case "header":
			return s.readHeader(v, at)
		case "sort":
			return s.readSort(v)
		case "sticky":
			return s.readSticky(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.check(at); err != nil {
		return nil, err
	}
	return s, nil
}

// readService reads "service": a list of names, or one name.
func (s *Spec) readService(v *tnode, at map[string]pos) error {
	const k = "service"
	if v.kind != tArray {
		name, set, err := scalar(v, k)
		if err != nil {
			return invalid(v.at, k, "must be a list of service names")
		}
		if set {
			s.Service = []string{name}
		}
		return nil
	}
	for i, n := range v.kids {
		path := k + "[" + strconv.Itoa(i+1) + "]"
		at[path] = n.at
		name, _, err := scalar(n, path)
		if err != nil {
			return err
		}
		s.Service = append(s.Service, name)
	}
	return nil
}

// readBlueGreen returns the reader of one "blueGreen" entry:
// {expression, route: green|blue}.
func (s *Spec) readBlueGreen(at map[string]pos) func(path string, e *tnode) error {
	return func(path string, e *tnode) error {
		var b BlueGreenEntry
		var route *tnode
		err := eachKey(e, path, []string{"expression", "route"}, func(k string, v *tnode, _ pos) error {
			at[path+"/"+k] = v.at
			if k == "route" {
				route = v
				return nil
			}
			txt, _, err := scalar(v, path+"/"+k)
			b.Expression = trimSpace(txt)
			return err
		})
		if err != nil {
			return err
		}
		if route == nil {
			return invalid(e.at, path, "missing route (green or blue)")
		}
		r, _, err := scalar(route, path+"/route")
		if err != nil {
			return err
		}
		switch strings.ToLower(trimSpace(r)) {
		case "green", "old":
			b.Route = SideOld
		case "blue", "new":
			b.Route = SideNew
		default:
			return invalid(route.at, path+"/route", "unknown route "+strconv.Quote(r)+" (want green or blue; old or new)")
		}
		s.BlueGreen = append(s.BlueGreen, b)
		return nil
	}
}

// readGray returns the reader of one "gray" entry: {expression, weight:
// [old, new]}.
func (s *Spec) readGray(at map[string]pos) func(path string, e *tnode) error {
	return func(path string, e *tnode) error {
		var g GrayEntry
		var weight *tnode
		err := eachKey(e, path, []string{"expression", "weight"}, func(k string, v *tnode, _ pos) error {
			at[path+"/"+k] = v.at
			if k == "weight" {
				weight = v
				return nil
			}
			txt, _, err := scalar(v, path+"/"+k)
			g.Expression = trimSpace(txt)
			return err
		})
		if err != nil {
			return err
		}
		if weight == nil {
			return invalid(e.at, path, "missing weight [old, new]")
		}
		if g.Weight, err = readWeightPair(weight, path+"/weight"); err != nil {
			return err
		}
		s.Gray = append(s.Gray, g)
		return nil
	}
}

// readWeightPair reads [old, new]: two whole numbers from 0 to MaxWeight.
func readWeightPair(weight *tnode, wpath string) ([2]int, error) {
	var out [2]int
	if weight.kind != tArray || len(weight.kids) != 2 {
		return out, invalid(weight.at, wpath, "must be a list of two weights [old, new]")
	}
	for i, w := range weight.kids {
		txt, _, err := scalar(w, wpath)
		if err != nil {
			return out, err
		}
		n, err := strconv.Atoi(trimSpace(txt))
		if err != nil || w.kind == tBool || n < 0 || n > MaxWeight {
			return out, invalid(w.at, wpath, "weight "+strconv.Quote(txt)+" is not a whole number from 0 to "+strconv.Itoa(MaxWeight))
		}
		out[i] = n
	}
	return out, nil
}

// readHeader reads "header": an object of name: value.
func (s *Spec) readHeader(v *tnode, at map[string]pos) error {
	const k = "header"
	if v.kind == tNull {
		return nil
	}
	return eachKey(v, k, nil, func(name string, hv *tnode, _ pos) error {
		at[k+"/"+name] = hv.at
		txt, set, err := scalar(hv, k+"/"+name)
		if err != nil {
			return err
		}
		if !set {
			return invalid(hv.at, k+"/"+name, "value must not be null")
		}
		s.Header = append(s.Header, HeaderField{name, trimSpace(txt)})
		return nil
	})
}

// readSort reads "sort": version or time.
func (s *Spec) readSort(v *tnode) error {
	const k = "sort"
	txt, set, err := scalar(v, k)
	if err != nil {
		return err
	}
	switch trimSpace(txt) {
	case "version":
		s.Sort = SortVersion
	case "time":
		s.Sort = SortTime
	default:
		if set {
			return invalid(v.at, k, "unknown sort "+strconv.Quote(txt)+" (want version or time)")
		}
	}
	return nil
}

// readSticky reads "sticky": #H['name'] or a bare name.
func (s *Spec) readSticky(v *tnode) error {
	const k = "sticky"
	txt, set, err := scalar(v, k)
	if err != nil || !set {
		return err
	}
	name, msg := parseSticky(txt)
	if msg != "" {
		return invalid(v.at, k, msg)
	}
	s.Sticky = name
	return nil
}

func treeEntries(v *tnode, key string, at map[string]pos, fn func(path string, e *tnode) error) error {
	if v.kind == tNull {
		return nil
	}
	if err := wantKind(v, tArray, key); err != nil {
		return err
	}
	for i, e := range v.kids {
		path := key + "[" + strconv.Itoa(i+1) + "]"
		at[path] = e.at
		if err := fn(path, e); err != nil {
			return err
		}
	}
	return nil
}

// check validates a spec's content. at maps paths to positions (nil for a
// spec built in code).
func (s *Spec) check(at map[string]pos) error {
	fail := func(path, msg string) error {
		return invalid(at[path], path, msg)
	}
	if len(s.Service) == 0 {
		return fail("service", "empty service list")
	}
	var services dupSet
	for i, name := range s.Service {
		path := "service[" + strconv.Itoa(i+1) + "]"
		if trimSpace(name) == "" {
			return fail(path, "empty service name")
		}
		if trimSpace(name) != name || !validText(name) || strings.ContainsAny(name, "\"\\") {
			return fail(path, "service name "+strconv.Quote(name)+" has white space, quotes or control characters")
		}
		if !services.add(name) {
			return fail(path, "duplicate service "+strconv.Quote(name))
		}
	}
	if len(s.BlueGreen) > 0 {
		if len(s.BlueGreen) != 2 || s.BlueGreen[0].Route == s.BlueGreen[1].Route {
			old, nw := 0, 0
			for _, b := range s.BlueGreen {
				if b.Route == SideNew {
					nw++
				} else {
					old++
				}
			}
			return fail("blueGreen", "needs exactly one green (old) and one blue (new) entry, has "+
				strconv.Itoa(old)+" green and "+strconv.Itoa(nw)+" blue")
		}
	}
	for i, b := range s.BlueGreen {
		if trimSpace(b.Expression) == "" {
			path := "blueGreen[" + strconv.Itoa(i+1) + "]"
			return fail(path, "missing expression (a "+b.Route.String()+" entry needs one; the default is <strategy>, the old versions)")
		}
	}
	if err := checkExprs(at, "blueGreen", len(s.BlueGreen), func(i int) string { return s.BlueGreen[i].Expression }); err != nil {
		return err
	}
	if err := checkExprs(at, "gray", len(s.Gray), func(i int) string { return s.Gray[i].Expression }); err != nil {
		return err
	}
	for i, g := range s.Gray {
		path := "gray[" + strconv.Itoa(i+1) + "]/weight"
		for _, w := range g.Weight {
			if w < 0 || w > MaxWeight {
				return fail(path, "weight "+strconv.Itoa(w)+" is not from 0 to "+strconv.Itoa(MaxWeight))
			}
		}
		if g.Weight[0] == 0 && g.Weight[1] == 0 {
			return fail(path, "both weights are 0")
		}
	}
	var names dupSet
	for _, f := range s.Header {
		path := "header/" + f.Name
		if trimSpace(f.Name) == "" {
			return fail("header", "empty header name")
		}
		if !names.add(f.Name) {
			return fail(path, "duplicate header "+strconv.Quote(f.Name))
		}
	}
	if s.Sort != SortVersion && s.Sort != SortTime {
		return fail("sort", "unknown sort "+strconv.Itoa(int(s.Sort)))
	}
	if s.Sticky != "" {
		if name, msg := parseSticky(formatSticky(s.Sticky)); msg != "" || name != s.Sticky {
			return fail("sticky", "sticky key "+strconv.Quote(s.Sticky)+" cannot be written as #H['name']")
		}
	}
	return nil
}

func checkExprs(at map[string]pos, key string, n int, src func(int) string) error {
	def := 0
	for i := range n {
		path := key + "[" + strconv.Itoa(i+1) + "]"
		e := trimSpace(src(i))
		if e == "" {
			if def > 0 {
				return invalid(at[path], path, "more than one entry without expression (entry "+strconv.Itoa(def)+" is already the default)")
			}
			def = i + 1
			continue
		}
		if _, err := expr.Compile(e); err != nil {
			p := at[path+"/expression"]
			return &Error{Path: path + "/expression", Line: p.line, Column: p.col,
				Msg: "expression " + strconv.Quote(e) + ": " + err.Error(), Err: withCause(ErrInvalid, err)}
		}
	}
	return nil
}

// specTree turns a spec into a tree for encoding.
func specTree(s *Spec) *tnode {
	root := obj()
	svc := &tnode{kind: tArray}
	for _, name := range s.Service {
		svc.kids = append(svc.kids, str(name))
	}
	root.add("service", svc)
	if len(s.BlueGreen) > 0 {
		list := &tnode{kind: tArray}
		for _, b := range s.BlueGreen {
			e := obj()
			if b.Expression != "" {
				e.add("expression", str(b.Expression))
			}
			list.kids = append(list.kids, e.add("route", str(b.Route.String())))
		}
		root.add("blueGreen", list)
	}
	if len(s.Gray) > 0 {
		list := &tnode{kind: tArray}
		for _, g := range s.Gray {
			e := obj()
			if g.Expression != "" {
				e.add("expression", str(g.Expression))
			}
			w := &tnode{kind: tArray, kids: []*tnode{num(g.Weight[0]), num(g.Weight[1])}}
			list.kids = append(list.kids, e.add("weight", w))
		}
		root.add("gray", list)
	}
	if len(s.Header) > 0 {
		root.add("header", headerNode(s.Header))
	}
	if s.Sort != SortVersion {
		root.add("sort", str(s.Sort.String()))
	}
	if s.Sticky != "" {
		root.add("sticky", str(formatSticky(s.Sticky)))
	}
	return root
}

// EncodeSpecJSON writes a spec as JSON that [ParseSpec] reads back equal.
func EncodeSpecJSON(s *Spec) ([]byte, error) {
	if s == nil {
		return nil, &Error{Msg: "nil spec", Err: ErrInvalid}
	}
	if err := s.check(nil); err != nil {
		return nil, err
	}
	return encodeTreeJSON(specTree(s)), nil
}

// EncodeSpecYAML writes a spec as YAML that [ParseSpec] reads back equal.
func EncodeSpecYAML(s *Spec) ([]byte, error) {
	if s == nil {
		return nil, &Error{Msg: "nil spec", Err: ErrInvalid}
	}
	if err := s.check(nil); err != nil {
		return nil, err
	}
	return encodeTreeYAML(specTree(s))
}
