package rule

import (
	"strconv"
	"strings"
)

// RouteType is one kind of constraint a route places on the instances of a
// service: version, region, address, their weight lists, and the
// failover, blacklist and environment values that travel with them. Every
// property of a type (its name, where a rule writes it, its n-d-* header,
// how its value is read) comes from one table, so that adding a type is a
// row in that table plus, in the pick engine, how it matches an instance.
type RouteType uint8

// The route types. The first five are the ones a rule decides per request
// (<strategy>, <route type="..."> and the conditions' *-id attributes), in
// the order Nepxion lists them; the rest are carried by a route as the rule
// or the headers set them.
const (
	TypeVersion       RouteType = iota // "version": which versions
	TypeRegion                         // "region": which regions
	TypeAddress                        // "address": which addresses (host:port, host or port)
	TypeVersionWeight                  // "version-weight": "1.0=90;1.1=10"
	TypeRegionWeight                   // "region-weight": "dev=90;qa=10"

	TypeVersionPrefer    // "version-prefer": versions preferred (<strategy-failover>)
	TypeVersionFailover  // "version-failover": versions to use when the route finds none
	TypeIDBlacklist      // "id-blacklist": instance IDs never picked (<strategy-blacklist><id>)
	TypeAddressBlacklist // "address-blacklist": addresses never picked (<strategy-blacklist><address>)
	TypeEnv              // "env": the environment instances must be in (n-d-env)
	TypeZone             // "zone": the zone instances must be in (a route value only: Nepxion has no n-d-zone header)

	TypeRegionTransfer  // "region-transfer": regions to use when no region is routed (<strategy-failover>)
	TypeRegionFailover  // "region-failover": regions to use when the routed region has no instance
	TypeEnvFailover     // "env-failover": environments to use when the n-d-env one has no instance ("common" when empty)
	TypeZoneFailover    // "zone-failover": zones to use when the caller's own zone has no instance (zone affinity)
	TypeAddressFailover // "address-failover": addresses to use when the routed address has no instance
	TypeGroup           // "group": the n-d-group header, carried down the chain (Nepxion routes on the caller's own group, not on it)

	// The rule's <discovery> section resolved for the calling service (its
	// name, version and region): values the balancer sets from the rule in
	// force, which never travel as headers.
	TypeDiscoveryVersion       // "discovery-version": the provider versions the caller may call (<discovery><version>); ";" allows none
	TypeDiscoveryVersionWeight // "discovery-version-weight": the version weights for the caller (<discovery><weight>)
	TypeDiscoveryRegionWeight  // "discovery-region-weight": the region weights for the caller (<discovery><weight>)
	TypeDiscoveryBlacklist     // "discovery-blacklist": host prefixes whose instances the caller never sees (<discovery><blacklist>)
	TypeDiscoveryWhitelist     // "discovery-whitelist": host prefixes the caller's instances must have (<discovery><whitelist>)
	TypeDiscoveryRegion        // "discovery-region": the provider regions the caller may call (<discovery><region>); ";" allows none

	// NumTypes is the number of route types; arrays indexed by RouteType
	// have this length.
	NumTypes RouteType = iota
)

// numTypes is the number of route types a rule decides: TypeVersion
// through TypeRegionWeight.
const numTypes = TypeRegionWeight + 1

// HeaderPrefix starts every routing header (Nepxion's N_D_PREFIX). At a
// trusted edge every inbound header with this prefix, in any case, is
// dropped.
const HeaderPrefix = "n-d-"

// ValueKind says how a route type's value is read.
type ValueKind uint8

const (
	// Filter values list alternatives separated by ';' that may use the
	// wildcards '*' and '?': "1.0;1.1", "1.*".
	Filter ValueKind = iota
	// Weights values list key=weight pairs: "1.0=90;1.1=10". The keys may
	// use wildcards.
	Weights
)

// typeInfo is one row of the route type table.
type typeInfo struct {
	name    string    // as rules, logs and the debug view write it
	header  string    // the n-d-* header (Nepxion's constant); "" when none
	element string    // where a rule document writes it; "" when nowhere
	kind    ValueKind // how its value is read
	// Where a Rule holds the type's value: strategy and condition (decided
	// types) or the fixed section value (the others); nil where none. (A
	// Decision, which lives on its caller's stack, lists its fields itself:
	// a call through a func value would move it to the heap.)
	strategy func(*Strategy) *Value
	condID   func(*Condition) *string
	fixed    func(*Rule) *Value
}

// types is the route type table: everything that differs between route
// types, in one place.
var types = [NumTypes]typeInfo{
	TypeVersion: {name: "version", header: "n-d-version", element: "strategy/version", kind: Filter,
		strategy: func(s *Strategy) *Value { return &s.Version },
		condID:   func(c *Condition) *string { return &c.VersionID }},
	TypeRegion: {name: "region", header: "n-d-region", element: "strategy/region", kind: Filter,
		strategy: func(s *Strategy) *Value { return &s.Region },
		condID:   func(c *Condition) *string { return &c.RegionID }},
	TypeAddress: {name: "address", header: "n-d-address", element: "strategy/address", kind: Filter,
		strategy: func(s *Strategy) *Value { return &s.Address },
		condID:   func(c *Condition) *string { return &c.AddressID }},
	TypeVersionWeight: {name: "version-weight", header: "n-d-version-weight", element: "strategy/version-weight", kind: Weights,
		strategy: func(s *Strategy) *Value { return &s.VersionWeight },
		condID:   func(c *Condition) *string { return &c.VersionWeightID }},
	TypeRegionWeight: {name: "region-weight", header: "n-d-region-weight", element: "strategy/region-weight", kind: Weights,
		strategy: func(s *Strategy) *Value { return &s.RegionWeight },
		condID:   func(c *Condition) *string { return &c.RegionWeightID }},
	TypeVersionPrefer: {name: "version-prefer", header: "n-d-version-prefer", element: "strategy-failover/version-prefer", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.VersionPrefer }},
	TypeVersionFailover: {name: "version-failover", header: "n-d-version-failover", element: "strategy-failover/version-failover", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.VersionFailover }},
	TypeIDBlacklist: {name: "id-blacklist", header: "n-d-id-blacklist", element: "strategy-blacklist/id", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Blacklist.ID }},
	TypeAddressBlacklist: {name: "address-blacklist", header: "n-d-address-blacklist", element: "strategy-blacklist/address", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Blacklist.Address }},
	TypeEnv:  {name: "env", header: "n-d-env", kind: Filter},
	TypeZone: {name: "zone", kind: Filter},
	TypeRegionTransfer: {name: "region-transfer", header: "n-d-region-transfer", element: "strategy-failover/region-transfer", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.RegionTransfer }},
	TypeRegionFailover: {name: "region-failover", header: "n-d-region-failover", element: "strategy-failover/region-failover", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.RegionFailover }},
	TypeEnvFailover: {name: "env-failover", header: "n-d-env-failover", element: "strategy-failover/env-failover", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.EnvFailover }},
	TypeZoneFailover: {name: "zone-failover", header: "n-d-zone-failover", element: "strategy-failover/zone-failover", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.ZoneFailover }},
	TypeAddressFailover: {name: "address-failover", header: "n-d-address-failover", element: "strategy-failover/address-failover", kind: Filter,
		fixed: func(r *Rule) *Value { return &r.Failover.AddressFailover }},
	TypeGroup:                  {name: "group", header: "n-d-group", kind: Filter},
	TypeDiscoveryVersion:       {name: "discovery-version", kind: Filter},
	TypeDiscoveryVersionWeight: {name: "discovery-version-weight", kind: Weights},
	TypeDiscoveryRegionWeight:  {name: "discovery-region-weight", kind: Weights},
	TypeDiscoveryBlacklist:     {name: "discovery-blacklist", kind: Filter},
	TypeDiscoveryWhitelist:     {name: "discovery-whitelist", kind: Filter},
	TypeDiscoveryRegion:        {name: "discovery-region", kind: Filter},
}

// typeNames are the names of the decided types, as <strategy> children
// and <route type="..."> write them.
var typeNames = func() (n [numTypes]string) {
	for t := range numTypes {
		n[t] = types[t].name
	}
	return n
}()

// decidedNames lists the decided types' names for messages: "version,
// region, address, version-weight or region-weight".
var decidedNames = func() string {
	var b strings.Builder
	for t := range numTypes {
		switch t {
		case 0:
		case numTypes - 1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(types[t].name)
	}
	return b.String()
}()

// String returns the type's name ("version", "id-blacklist", ...).
func (t RouteType) String() string {
	if t < NumTypes {
		return types[t].name
	}
	return "RouteType(" + strconv.Itoa(int(t)) + ")"
}

// HeaderName returns the n-d-* header that carries this route type down
// the call chain ("n-d-version", ...), Nepxion's name for it; "" for a
// type no header carries.
func (t RouteType) HeaderName() string {
	if t < NumTypes {
		return types[t].header
	}
	return ""
}

// Element returns where a rule document writes the type
// ("strategy/version", "strategy-blacklist/id"); "" for a type only routes
// and headers carry.
func (t RouteType) Element() string {
	if t < NumTypes {
		return types[t].element
	}
	return ""
}

// Kind returns how the type's value is read.
func (t RouteType) Kind() ValueKind {
	if t < NumTypes {
		return types[t].kind
	}
	return Filter
}

// Decided reports whether a rule decides the type per request (through
// <strategy>, routes and conditions); the other types are fixed values of
// the rule or come from headers.
func (t RouteType) Decided() bool { return t < numTypes }

// idAttr is the condition attribute that references routes of this type.
func (t RouteType) idAttr() string { return types[t].name + "-id" }

func parseRouteType(s string) (RouteType, bool) {
	for t := range numTypes {
		if types[t].name == s {
			return t, true
		}
	}
	return 0, false
}
