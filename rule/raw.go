package rule

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
	refs     [numTypes]rawAttr
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
}

const (
	pathStrategy  = "strategy"
	pathRelease   = "strategy-release"
	pathFailover  = "strategy-failover"
	pathBlacklist = "strategy-blacklist"
)

// ignoredSections are Nepxion rule sections graylane accepts and skips.
var ignoredSections = []string{"register", "discovery", "strategy-customization", "parameter"}

func isIgnored(name string) bool {
	for _, s := range ignoredSections {
		if s == name {
			return true
		}
	}
	return false
}

var condAttrNames = []string{"id", "expression", "version-id", "region-id", "address-id", "version-weight-id", "region-weight-id"}

func condAttrSlots(c *rawCond) []*rawAttr {
	return []*rawAttr{&c.id, &c.expr, &c.refs[0], &c.refs[1], &c.refs[2], &c.refs[3], &c.refs[4]}
}
