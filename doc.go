// Package graylane is a client-side load balancer for Go services that call
// each other through Consul, with full-chain blue/green and gray release
// routing compatible with Nepxion Discovery's rules and n-d-* headers.
//
// The work is split into packages that lean one way:
//
//	expr  <-  rule  <-  balancer  ->  discovery
//
// # Packages
//
//   - [github.com/graylane/graylane/expr] compiles Nepxion-style conditions
//     such as #H['xyz'] == '1' once and evaluates them per request.
//   - [github.com/graylane/graylane/rule] parses release rules (Nepxion XML,
//     JSON or YAML), expands the short orchestration spec against live
//     versions, and decides per request which versions each service must use.
//   - [github.com/graylane/graylane/discovery] watches Consul (or the embedded
//     static registry) for healthy instances and rule documents, and registers
//     the local instance.
//   - [github.com/graylane/graylane/balancer] picks instances per request,
//     plugs into net/http and gRPC, and carries the routing decision down the
//     call chain in n-d-* headers.
package graylane
