// Package balancer is graylane's client-side load balancer with full-chain
// blue/green and gray release routing, compatible with Nepxion Discovery.
//
// It is the runtime over the pure pick engine of package balancer/pick: it
// follows rules and discovery snapshots, serves HTTP (transport,
// middleware, retries, the debug page) and does the I/O, while the engine
// filters and chooses. The engine's names are re-exported here
// ([Route], [WithRoute], [Selector], [ErrNoInstance], ...), so users import
// this package alone.
//
// A [Balancer] watches service instances through a [discovery.Registry]
// (Consul, or the static in-memory registry) and, optionally, a release
// rule ([WithRuleSource], [WithRule]). For each call it picks a healthy
// instance of the version the request's route allows, and the route follows
// the request down the whole call chain as n-d-* headers.
//
// # Surfaces
//
//   - [Balancer.Transport] / [Balancer.Client]: an http.RoundTripper that
//     sends http://service-name/path to an instance, copies the route and the
//     forwarded business headers onto the outgoing request (never modifying
//     the caller's), and retries safe requests on another instance through
//     go-retryablehttp.
//   - [Balancer.Middleware]: puts the route of each inbound request into
//     its context, deciding it with the rule at an entry point.
//   - [Balancer.Pick]: the primitive under both, for other transports.
//   - [Balancer.Decide], [WithRoute], [RouteFrom]: the route for code that
//     is neither an inbound nor an outbound HTTP call (a message consumer).
//   - [Selector]: the filtering and choosing core over any slice of
//     instances (package balancer/pick), shared with the gRPC plugin so both
//     route the same way.
//   - [RouteFromHeader], [SetRouteHeader]: the route codec over an
//     http.Header; [Balancer.Inbound] is the inbound step over any carrier
//     of headers, [Balancer.InjectIdentity] writes the hop's own
//     n-d-service-* identity (WithIdentity) onto any outbound carrier, and
//     [RequestValues] what a rule's expressions read from an HTTP request
//     (query parameter, then cookie, then header).
//   - [Balancer.DebugHandler] / [Balancer.Debug]: what the balancer knows,
//     as JSON or a plain HTML page: the rule in force (XML), the spec it was
//     expanded from and with which versions, when and from which KV key and
//     index it was applied, why the last rejected document failed (the
//     parser's message, its position, a few cut lines there and the
//     document's SHA-256, never the document itself), and per service its versions and instances with in-flight
//     calls, failures in a row and ejections, and its circuit breakers
//     by version (state, counts, times opened). It reads published state
//     only and never holds up a pick. Calls are counted in flight from
//     the first Debug or DebugHandler call on (mount the page at start-up),
//     or always with LeastInFlight: counting costs two atomic writes per
//     call, which a pick otherwise does not pay.
//   - [Balancer.Rule] and [Balancer.SubscribeRule]: the rule in force and
//     its changes, which makes a Balancer the rule source of a drain gate
//     (package balancer/drain).
//
// # Routes
//
// A [Route] carries, per route type ([rule.RouteType]), a [rule.Value]: a
// JSON map by service ({"svc-a":"1.1","svc-b":"1.1"}) or one plain value
// for every service, as the n-d-version, n-d-region, n-d-address,
// n-d-version-weight, n-d-region-weight, n-d-version-prefer,
// n-d-version-failover, n-d-id-blacklist, n-d-address-blacklist and
// n-d-env headers do (the names come from the route type table). A
// service missing from a map is not constrained. Inbound headers beat the
// local rule, so a decision made at the entry sticks for the whole chain;
// at a trusted edge ([WithTrustedEdge]) inbound n-d-* headers are dropped
// first, so outside clients cannot route themselves.
//
// # Picking
//
// Filters apply in order: blacklist (id, address), env, zone, address,
// region, version. A value lists alternatives with ';' and may use the
// wildcards '*' and '?'; an address matches "host:port", the host or the
// port. With version-weight (region-weight) the version (region) is drawn
// by weight first and the instance second, so instance counts do not skew
// a split. Within a set: [RoundRobin] (default), [LeastInFlight] (power of
// two choices) or [WeightedRandom].
//
// When nothing matches, [Strict] failover (the default) fails the call with
// [ErrNoInstance], wrapped in a [*NoInstanceError] naming the service and
// the route: a request routed to 1.1 never silently lands on 1.0. The
// failover elements the route carries (from the rule's <strategy-failover>
// or the n-d-* headers: version-prefer, version-failover, region-transfer,
// region-failover, env-failover, zone-failover, address-failover) and
// Nepxion's switches ([WithSwitches]: env failover to "common", zone
// affinity, group isolation, ...) apply in either mode, in the order of
// Nepxion's strategy filters. [Permissive] failover then tries the stable
// (oldest) version and finally any instance, never crossing an env, a
// group under isolation, a blacklist, or the host, version and region
// filters of the rule's <discovery> section for the caller
// ([WithIdentity]).
//
// Passive health checking ([Ejection]): an instance whose calls fail
// several times in a row is left out for a growing back-off period, except
// that a set is never emptied by ejection.
//
// Circuit breaking ([BreakerPolicy], on by default with conservative
// thresholds): when a whole version set of a service keeps failing, its
// breaker (github.com/sony/gobreaker) opens and the transport fails the
// requests routed there at once with a [*BreakerOpenError] (matching
// [ErrBreakerOpen]), letting a few probes through after an open timeout
// to close it again. Strict failover holds: an open breaker on 1.1 sends
// nothing to 1.0 unless the route's own version-failover says so. gRPC
// calls through package grpcroute pass the same breakers
// (grpcroute.WithBalancer).
//
// A rolling release retires a version while requests routed to it are
// still on their way. With [WithRemovalGrace], instances that leave
// discovery keep answering, for the grace period, the requests that no
// listed instance can take, so retiring 1.0 under traffic fails nothing
// while its processes shut down gracefully.
//
// # Rules
//
// A rule source publishes documents that are release rules (XML, JSON or
// YAML) or orchestration specs. Specs are expanded against the live
// versions of their services and expanded again when those change; a
// version that leaves discovery stays in the expansion for the expansion
// hold ([WithExpansionHold]), so a transient absence never turns the new
// version into the old side. Each rule is swapped in atomically, so one
// request uses one rule from start to end; a bad document is logged with
// the parser's message and the previous rule stays in force; a deleted key
// clears the rule. A valid rule that routes a watched service to a version
// none of its instances runs is applied too, with a warning logged once
// per change of what is missing and shown in the debug view.
//
// # Observability
//
// With [WithMeterProvider] the transport records, through OpenTelemetry's
// metrics API, every attempt (http.client.request.duration, in seconds),
// every call across its attempts (graylane.client.calls) and every retry
// (graylane.client.retries); the middleware records every request served
// (http.server.request.duration). Client figures carry the callee's
// service and the picked instance's version, region and zone, the route's
// source (blue-green, gray, strategy, header or none) and the condition
// that fired, whether the attempt is a retry, the method, the status code
// and error.type on failure (the status code for answers of 500 and more;
// connection, timeout, no_instance, breaker_open, canceled otherwise).
// Server figures carry the server's own service and version
// ([WithIdentity]). No attribute holds an instance address or a request
// value unless [WithInstanceMetrics] asks for the address. The same
// figures feed the debug view's per-version rates, error ratios and
// p50/p99 over the last minute. Without a meter provider nothing is
// recorded and nothing spent; with one, a call through the transport
// allocates no more than without, and a request through the middleware
// once more.
//
// With [WithTracerProvider] the transport makes one client span per
// attempt (instance, version, outcome: a retry is a second child span) and
// the entry one span for the route it decided (which condition fired,
// which route); each attempt's span context goes out through the
// propagator ([WithPropagator], by default OpenTelemetry's global one).
//
// # Asynchronous hops
//
// The route lives in a context, and travels with it:
//
//   - Through a hop that forwards only OpenTelemetry context (a sidecar, an
//     instrumented proxy, a service without graylane), with [WithBaggage]:
//     the route also travels as W3C baggage members, and is read from
//     baggage when no n-d-* header arrived (headers win when both did).
//   - Through a message: the producer writes the route onto the message's
//     headers with [InjectRoute] through a [pick.Carrier] over them (a few
//     lines for Kafka record headers), and the consumer continues it with
//     [Balancer.InboundMessage], so a 1.1 producer's message is handled
//     with calls to 1.1.
//   - Into a goroutine that outlives its request: start it with
//     context.WithoutCancel(r.Context()), which keeps the route and drops
//     the request's cancellation. A goroutine started from
//     context.Background() has no route; a hop that receives routed calls
//     and is not an entry logs such a call once per service at debug level.
//
// # Performance
//
// The pick path reads immutable state through atomic pointers: per service
// a [Selector] built from each discovery snapshot, and per distinct route
// constraint a cached candidate set. With a route in the context, Pick
// neither locks nor allocates and costs the same at 10 or 10,000
// instances. It returns the instance in place (a pointer into the
// snapshot, never copied). A pick and a successful call write to shared
// memory once, the round-robin counter of the candidate set (not at all
// with the random policies), plus the in-flight count at both ends where
// something reads it (LeastInFlight, the debug view above); a failed call
// also writes its instance's failure count. The README's performance table
// has the figures next to grpc-go's round_robin picker.
package balancer
