package pick

import (
	"strconv"
	"strings"

	"github.com/graylane/graylane/discovery/instance"
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
	exclude   role = iota + 1 // drop the instances that match (blacklists), whatever the failover
	allow                     // keep only the matches, whatever the failover (<discovery>'s version, region and whitelist)
	boundary                  // keep only the matches; only the type's own failover element may widen it (env)
	narrow                    // keep only the instances that match
	steered                   // keep the matches; when none match, the type's failover element decides (address, region)
	routed                    // the routed filter (version): with preference and failover
	prefer                    // versions preferred when no version is routed
	alternate                 // a failover element: where its type goes when the routed value matches nothing
	transfer                  // regions to use when no region is routed (region-transfer)
	weigh                     // a weight list: draw a group by weight, then an instance in it
	ruleWeigh                 // a weight list of the rule's <discovery> section: used when no route weighs
	carried                   // carried down the chain; no filter (n-d-group)
)

// matching is the engine's side of one route type: its role and the
// instance attribute its value is matched against. It completes the route
// type table of package rule (name, element, header, value kind): a new
// route type is a row there and a row here.
type matching struct {
	role    role
	attr    func(*instance.Instance) string // nil for address types
	address bool                            // matched against host:port, host or port
	// prefix: each alternative of the value is a prefix of the attribute
	// (Nepxion's host filters: host.startsWith(value)).
	prefix bool
	// alt is the failover element of a boundary, steered or routed type;
	// of names, for a failover element, the type it stands in for.
	alt, of rule.RouteType
}

var matchings = [rule.NumTypes]matching{
	rule.TypeVersion:                {role: routed, attr: version, alt: rule.TypeVersionFailover},
	rule.TypeRegion:                 {role: steered, attr: region, alt: rule.TypeRegionFailover},
	rule.TypeAddress:                {role: steered, address: true, alt: rule.TypeAddressFailover},
	rule.TypeVersionWeight:          {role: weigh, attr: version},
	rule.TypeRegionWeight:           {role: weigh, attr: region},
	rule.TypeVersionPrefer:          {role: prefer, attr: version},
	rule.TypeVersionFailover:        {role: alternate, attr: version, of: rule.TypeVersion},
	rule.TypeIDBlacklist:            {role: exclude, attr: instanceID},
	rule.TypeAddressBlacklist:       {role: exclude, address: true},
	rule.TypeEnv:                    {role: boundary, attr: env, alt: rule.TypeEnvFailover},
	rule.TypeZone:                   {role: narrow, attr: zone, alt: rule.TypeZoneFailover}, // alt: the fallback of zone affinity
	rule.TypeRegionTransfer:         {role: transfer, attr: region},
	rule.TypeRegionFailover:         {role: alternate, attr: region, of: rule.TypeRegion},
	rule.TypeEnvFailover:            {role: alternate, attr: env, of: rule.TypeEnv},
	rule.TypeZoneFailover:           {role: alternate, attr: zone, of: rule.TypeZone},
	rule.TypeAddressFailover:        {role: alternate, address: true, of: rule.TypeAddress},
	rule.TypeGroup:                  {role: carried, attr: groupOf},
	rule.TypeDiscoveryVersion:       {role: allow, attr: version},
	rule.TypeDiscoveryVersionWeight: {role: ruleWeigh, attr: version},
	rule.TypeDiscoveryRegionWeight:  {role: ruleWeigh, attr: region},
	rule.TypeDiscoveryBlacklist:     {role: exclude, attr: host, prefix: true},
	rule.TypeDiscoveryWhitelist:     {role: allow, attr: host, prefix: true},
	rule.TypeDiscoveryRegion:        {role: allow, attr: regionOrDefault},
}

// The instance metadata keys Nepxion registers its own instance id and
// service type under (DiscoveryMetaDataConstant: Consul cannot hold dots in
// metadata keys, so Nepxion writes underscores there; other registries keep
// the dotted spring.application.* names, which a bridged catalog may carry).
var (
	uuidKeys = [...]string{"spring_application_uuid", "spring.application.uuid"}
	typeKeys = [...]string{"spring_application_type", "spring.application.type"}
)

// metaOf returns the first of keys the instance's metadata holds.
func metaOf(in *instance.Instance, keys []string) string {
	for _, k := range keys {
		if v, ok := in.Meta[k]; ok {
			return v
		}
	}
	return ""
}

// instanceID is the id attribute: the Consul service ID. keep matches the
// instance's own Nepxion id too (see matchesID).
func instanceID(in *instance.Instance) string { return in.ID }

func env(in *instance.Instance) string     { return in.Env }
func zone(in *instance.Instance) string    { return in.Zone }
func groupOf(in *instance.Instance) string { return in.Group }

func version(in *instance.Instance) string { return in.Version }
func region(in *instance.Instance) string  { return in.Region }

// host is the instance's host, the address without the port (Nepxion's
// ServiceInstance.getHost).
func host(in *instance.Instance) string { return in.Address }

// regionOrDefault is the instance's region as Nepxion's region filter
// reads it (PluginAdapter.getInstanceRegion): "default" when it declares
// none.
func regionOrDefault(in *instance.Instance) string {
	if in.Region == "" {
		return rule.DefaultRegion
	}
	return in.Region
}

// prefixes turns each ';' alternative of value into a prefix pattern
// ("10.10" into "10.10*"), so that the filter matches as Nepxion's
// host.startsWith does.
func prefixes(value string) string {
	var b strings.Builder
	for alt := range strings.SplitSeq(value, ";") {
		if alt = strings.TrimSpace(alt); alt == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(alt)
		if !strings.HasSuffix(alt, "*") {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// keep returns the predicate "the instance matches value" for route type t.
// An id matches the Consul service ID or the instance's own Nepxion id
// (spring.application.uuid in its metadata), so a blacklist written for
// either kind of caller excludes the instance in both.
func keep(t rule.RouteType, value string) func(*instance.Instance) bool {
	if matchings[t].prefix {
		value = prefixes(value)
	}
	m := compileMatcher(value)
	if matchings[t].address {
		return func(in *instance.Instance) bool { return m.matchAddress(in.HostPort(), in.Address, in.Port) }
	}
	if t == rule.TypeIDBlacklist {
		return func(in *instance.Instance) bool {
			if m.match(in.ID) {
				return true
			}
			u := metaOf(in, uuidKeys[:])
			return u != "" && m.match(u)
		}
	}
	attr := matchings[t].attr
	return func(in *instance.Instance) bool { return m.match(attr(in)) }
}
