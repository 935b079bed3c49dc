package pick

import (
	"strconv"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/pattern"
	"github.com/graylane/graylane/rule"
)

// matcher is a compiled filter value (internal/pattern: ';' alternatives,
// '*' and '?' wildcards), the one reading of filter values that the drain
// gate shares. A zero matcher matches nothing; callers only build one for a
// non-empty value. Matchers are built when a candidate set is computed,
// never on the pick path, and matching does not allocate.
type matcher struct{ m pattern.Matcher }

// compileMatcher compiles a filter value.
func compileMatcher(s string) matcher { return matcher{pattern.Compile(s)} }

// match reports whether s matches one of the alternatives.
func (m *matcher) match(s string) bool { return m.m.Match(s) }

// matchAddress reports whether an instance's address matches: an
// alternative may name "host:port", the host alone or the port alone.
func (m *matcher) matchAddress(hostPort, host string, port int) bool {
	if m.m.Match(hostPort) || m.m.Match(host) {
		return true
	}
	var buf [20]byte
	return m.m.Match(string(strconv.AppendInt(buf[:0], int64(port), 10)))
}

// role is what a route type's value does to the instances of a service.
type role uint8

const (
	exclude  role = iota + 1 // drop the instances that match (blacklists), whatever the failover
	narrow                   // keep only the instances that match
	routed                   // the routed filter (version): with preference and failover
	prefer                   // versions preferred over the rest, and tried first on failover
	failover                 // versions to use when the routed set is empty
	weigh                    // a weight list: draw a group by weight, then an instance in it
)

// matching is the engine's side of one route type: its role and the
// instance attribute its value is matched against. It completes the route
// type table of package rule (name, element, header, value kind): a new
// route type is a row there and a row here.
type matching struct {
	role    role
	attr    func(*discovery.Instance) string // nil for address types
	address bool                             // matched against host:port, host or port
}

var matchings = [rule.NumTypes]matching{
	rule.TypeVersion:          {role: routed, attr: version},
	rule.TypeRegion:           {role: narrow, attr: region},
	rule.TypeAddress:          {role: narrow, address: true},
	rule.TypeVersionWeight:    {role: weigh, attr: version},
	rule.TypeRegionWeight:     {role: weigh, attr: region},
	rule.TypeVersionPrefer:    {role: prefer, attr: version},
	rule.TypeVersionFailover:  {role: failover, attr: version},
	rule.TypeIDBlacklist:      {role: exclude, attr: func(in *discovery.Instance) string { return in.ID }},
	rule.TypeAddressBlacklist: {role: exclude, address: true},
	rule.TypeEnv:              {role: narrow, attr: func(in *discovery.Instance) string { return in.Env }},
	rule.TypeZone:             {role: narrow, attr: func(in *discovery.Instance) string { return in.Zone }},
}

func version(in *discovery.Instance) string { return in.Version }
func region(in *discovery.Instance) string  { return in.Region }

// keep returns the predicate "the instance matches value" for route type t.
func keep(t rule.RouteType, value string) func(*discovery.Instance) bool {
	m := compileMatcher(value)
	if matchings[t].address {
		return func(in *discovery.Instance) bool { return m.matchAddress(in.HostPort(), in.Address, in.Port) }
	}
	attr := matchings[t].attr
	return func(in *discovery.Instance) bool { return m.match(attr(in)) }
}
