// Package graylane is a client-side load balancer for Go services that call
// each other through Consul, with full-chain blue/green and gray release
// routing compatible with Nepxion Discovery's rules and n-d-* headers.
//
// The work is split into packages that lean one way:
//
//	expr  <-  rule  <-  balancer/pick  <-  balancer  ->  discovery
//	                         ^     |                         |
//	        balancer/grpcroute     +-> discovery/instance <--+
//
// expr, rule and balancer/pick are pure: no I/O, no goroutines, no
// logging, no net/http, no Consul client. balancer is the runtime that does
// the I/O. The engine takes its instances from discovery/instance, the
// plain data of discovery, which discovery re-exports as discovery.Instance
// and discovery.Snapshot.
//
// # Packages
//
//   - [github.com/graylane/graylane/expr] compiles Nepxion-style conditions
//     such as #H['xyz'] == '1' once and evaluates them per request.
//   - [github.com/graylane/graylane/rule] parses release rules (Nepxion XML,
//     JSON or YAML), expands the short orchestration spec against live
//     versions, and decides per request which versions each service must use.
//     Its route type table (rule.RouteType) names every kind of constraint
//     once: name, XML element, n-d-* header, how its value reads.
//   - [github.com/graylane/graylane/balancer/pick] is the pick engine: routes,
//     constraints, the selector with its bounded candidate cache, call
//     tracking, and the route codec over any carrier of headers.
//   - [github.com/graylane/graylane/discovery] watches Consul (or the embedded
//     static registry) for healthy instances and rule documents, and registers
//     the local instance.
//   - [github.com/graylane/graylane/balancer] is the runtime: it follows the
//     rule and the discovery snapshots, picks instances per request through
//     the engine, plugs into net/http, and carries the routing decision down
//     the call chain in n-d-* headers; balancer/grpcroute does the same for
//     gRPC.
//   - [github.com/graylane/graylane/rollout] steps a gray release by a plan,
//     judging each step on the new version's figures against the old's, and
//     promotes or rolls it back; its state lives in Consul KV.
package graylane
