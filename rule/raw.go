package rule

import (
	"strconv"
)

// The raw form of a rule, shared by every front end.

// The front ends (XML, and JSON/YAML) read a document into this raw form,
// keeping positions; build validates it and makes the Rule.

type rawAttr struct {
	s   string
	at  pos
	set bool
}

type rawValue struct {
	at    pos
	set   bool
	text  string // XML text or a JSON/YAML string
	pairs []pair // a JSON/YAML object
	isMap bool
}

type rawCond struct {
	at       pos
	id, expr rawAttr
	// header is the legacy spelling of expression, which Nepxion still
	// reads; a condition may carry one of the two.
	header rawAttr
	refs   [numTypes]rawAttr
}

type rawConds struct {
	at          pos
	typ, sticky rawAttr
	conds       []rawCond
}

type rawRoute struct {
	at      pos
	id, typ rawAttr
	val     rawValue
}

type rawRule struct {
	strategy  [numTypes]rawValue
	conds     []rawConds
	routes    []rawRoute
	header    rawValue
	failover  [7]rawValue
	blacklist [2]rawValue
	ignored   []string
	nIgnored  int // how many ignore calls, listed or not
	seenIgn   dupSet
	kept      []keptSection
	discovery rawDiscovery
}

// maxIgnored bounds Rule.Ignored: a document padded with unknown elements
// must not grow the list with it.
const maxIgnored = 64

// ignore records something the document carries and graylane does not
// use, so Rule.Ignored can list it: each path once, at most maxIgnored
// paths, then a count of the rest (which may repeat).
func (raw *rawRule) ignore(path string) {
	if raw.nIgnored < maxIgnored && !raw.seenIgn.add(path) {
		return
	}
	raw.nIgnored++
	switch {
	case raw.nIgnored <= maxIgnored:
		raw.ignored = append(raw.ignored, path)
	case raw.nIgnored == maxIgnored+1:
		raw.ignored = append(raw.ignored, "")
	}
	if raw.nIgnored > maxIgnored {
		raw.ignored[maxIgnored] = "... and " + strconv.Itoa(raw.nIgnored-maxIgnored) + " more"
	}
}

const (
	pathStrategy  = "strategy"
	pathRelease   = "strategy-release"
	pathFailover  = "strategy-failover"
	pathBlacklist = "strategy-blacklist"
)

// nepxionSections are the sections Nepxion's parser allows at most once;
// graylane rejects a second one as Nepxion does. Any other unknown section
// may repeat.
var nepxionSections = []string{"register", "discovery", pathStrategy, pathRelease, pathFailover, pathBlacklist, "parameter"}

var condAttrNames = []string{"id", "expression", "header", "version-id", "region-id", "address-id", "version-weight-id", "region-weight-id"}

func condAttrSlots(c *rawCond) []*rawAttr {
	return []*rawAttr{&c.id, &c.expr, &c.header, &c.refs[0], &c.refs[1], &c.refs[2], &c.refs[3], &c.refs[4]}
}
