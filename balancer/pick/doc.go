// Package pick is graylane's pick engine: given a route and the live
// instances of a service, it chooses the instance a call goes to. It is
// pure: no I/O, no goroutines, no logging, no net/http, no Consul client.
// The HTTP runtime (package balancer) and the gRPC plugin (package
// balancer/grpcroute) both pick through it, so every surface routes the
// same way.
//
// Its instances are [instance.Instance] values, from the leaf package
// discovery/instance rather than from package discovery (the Consul
// client); discovery.Instance is the same type under an alias, so a
// discovery snapshot's instances go to [NewSelector] as they are.
//
// # Route types
//
// A route constrains each service per route type ([rule.RouteType]):
// version, region, address, their weight lists, version preference and
// failover, the id and address blacklists, env and zone, the failover
// elements of region, env, zone and address (region-transfer too), the
// n-d-group header, and the rule's <discovery> section resolved for the
// caller (its host filter, versions, regions and weights: local values
// that never travel). The types are one
// table in package rule (name, where a rule writes it, n-d-* header, how
// its value reads); this package adds, per type, how its value matches an
// instance (match.go). A [Route] holds one [rule.Value] per type, a
// [Constraint] one filter string per type.
//
// # Picking
//
// A [Selector] is built once per instance list (a discovery snapshot) and
// picks for any number of calls: [Selector.Pick] derives the route's
// [Constraint] for its service, looks up the candidate set cached for it
// (a bounded copy-on-write map: one atomic load and a map look-up), draws a
// weighted group and applies the [Policy]. A [Tracker] keeps in-flight
// counts and passive ejection across snapshots; a selector counts calls in
// flight only with [LeastInFlight] or [SelectorConfig.CountInFlight], since
// counting costs two atomic writes per call. Once a constraint is cached, a
// pick neither locks nor allocates.
//
// # The route codec
//
// Routes travel between processes as Nepxion Discovery's n-d-* headers.
// [Inject] and [Extract] write and read them over a [Carrier] (get, set,
// keys, like OpenTelemetry's propagation.TextMapCarrier); the balancer
// adapts http.Header, grpcroute adapts gRPC metadata, and message headers
// or W3C baggage adapt the same way. [Drop] clears them at a trusted edge.
// The n-d-* headers no route type reads (the failover and transfer
// headers, n-d-group, anything newer: [IsPassedKey]) travel in the route as
// they arrived, so a hop forwards every n-d-* header as Nepxion's
// interceptors do; the n-d-service-* identity headers never travel on:
// [IdentityHeaders] writes the sending hop's own ([Identity.Headers]).
//
// # Context
//
// [WithRoute] puts a route into a context (one allocation); [RouteFrom]
// and [FromContext] read it back on the pick path.
package pick
