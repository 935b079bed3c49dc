// Package grpcroute brings graylane's full-chain blue/green and gray routing
// to gRPC, through grpc-go's public plugin API: a resolver that reads
// instances from a discovery.Registry (Consul or the static registry), a
// load-balancing policy whose picker routes every call by the
// balancer.Route in its context, and interceptors that carry that route
// from hop to hop in Nepxion's n-d-* metadata.
//
// # Setup
//
// Register the policy once, at init time, then dial services by name with
// the resolver and the interceptors:
//
//	func init() { grpcroute.Register() }
//
//	reg := discovery.NewConsul(consulClient)
//	b, _ := balancer.New(reg, balancer.WithRuleSource(rules), balancer.WithForwardHeaders("x-user"))
//	ics := grpcroute.NewInterceptors(b)
//	conn, _ := grpc.NewClient("consul:///svc-a",
//	    grpc.WithTransportCredentials(creds),
//	    grpc.WithResolvers(grpcroute.NewResolverBuilder(reg)),
//	    grpc.WithDefaultServiceConfig(grpcroute.DefaultServiceConfig),
//	    grpc.WithChainUnaryInterceptor(ics.UnaryClient()),
//	    grpc.WithChainStreamInterceptor(ics.StreamClient()),
//	    grpc.WithStatsHandler(ics.StatsHandler()), // attempts; records only with a meter or tracer provider
//	)
//	srv := grpc.NewServer(ics.ServerOptions()...)
//
// A gateway builds its balancer with balancer.WithEntry(true) (or
// balancer.WithTrustedEdge(true) at the edge of the trusted network), so
// the rule decides there and the decision travels down the chain. These
// settings, and the forwarded business metadata, belong to the balancer
// alone: its HTTP middleware and the gRPC server interceptors run the same
// inbound step (balancer.Inbound) with them, so the HTTP and gRPC hops of
// one process cannot disagree.
//
// # Resolver
//
// NewResolverBuilder serves targets "consul:///<service>", optionally
// "?dc=<datacenter>&tag=<tag>" (see WithRegistryFor). Each instance becomes
// an endpoint carrying the discovery.Instance as an endpoint attribute
// (InstanceFrom), so version, region, zone, env and weight reach the
// picker without touching the addresses that identify connections. States
// are pushed only when the instance list changes; ResolveNow never blocks.
//
// # Balancer
//
// The policy, named Name ("graylane"), keeps one pick-first child per
// endpoint (grpc-go's endpointsharding, as round_robin does) and builds a
// new picker whenever a child's state changes. The picker hands the ready
// endpoints' instances to the pick engine's Selector (package
// balancer/pick, used without the HTTP runtime) — the same filters,
// weights, policies and failover as HTTP picks — and takes the route from the
// call's context: the balancer.Route put there by the interceptors, the
// HTTP middleware or balancer.WithRoute, or else the n-d-* keys of the
// outgoing metadata. Service configs set the policy, failover and ejection
// per channel (see Config).
//
// When no ready endpoint may take a call, the pick waits if a connecting
// endpoint would take it, and otherwise fails: gRPC ends the call with
// codes.Unavailable and a message naming the service and the route (see
// NoReadyInstanceError), or lets it wait for a new instance if it was made
// with grpc.WaitForReady(true).
//
// # Circuit breaking
//
// Calls pass the circuit breaker of the version set they are picked from,
// as the balancer's HTTP requests do (see balancer.BreakerPolicy): with
// WithBalancer the balancer's own breakers, under its policy and shown in
// its debug view, so that HTTP and gRPC calls to one version open one
// breaker; without it the builder's, shared by its channels and set by
// WithBreaker (on by default, with the same defaults). A call that lands on
// an open breaker, or on a half-open one with its probes under way, is
// picked again under the route's version-failover if it has one; otherwise
// it ends at once, wait-for-ready or not, with codes.Unavailable and a
// message naming the service, the version and the breaker's state, and the
// error the caller gets unwraps to a *balancer.BreakerOpenError
// (errors.Is(err, balancer.ErrBreakerOpen) holds). Outcomes are counted in
// the pick's Done callback, when gRPC ends the call: codes.Unavailable (a
// connection error, or a server that cannot take the call: what HTTP's
// 502, 503 and 504 become) is a failure; Canceled and DeadlineExceeded
// are neither failures nor successes, gRPC's deadline being the
// caller's (they count as calls, toward MinRequests and the failure
// ratio's denominator, as the HTTP transport's cancelled attempts do); a
// pick that gRPC ends unsent (its SubConn no longer ready; it picks
// again) counts nothing; any other status is the version answering. A
// call through a closed breaker allocates nothing (but the first call of
// an instance after its breaker closed again: one closure per state).
//
// So a version that hangs, its calls ending with DeadlineExceeded at the
// caller's deadline, never opens its breaker: gRPC has no deadline of its
// own per attempt. Passive ejection does count DeadlineExceeded against
// the instance; against hangs, give calls deadlines of their own and keep
// passive ejection on.
//
// # Interceptors
//
// Interceptors move the route between the context and gRPC metadata: the
// server side reads inbound n-d-* metadata and the forwarded business
// metadata into the context and, at an entry or for calls without routing
// metadata, lets the balancer's rule decide; the client side writes the
// context's route to the outgoing metadata. As Nepxion's interceptors do,
// every n-d-* key that arrived goes on unchanged, whether graylane reads it
// or not, except the n-d-service-* identity keys: the client side sets them
// to the balancer's own identity (balancer.WithIdentity). The HTTP
// middleware and transport of package balancer read and write the same
// route as HTTP headers, so chains that mix HTTP and gRPC hops keep it.
//
// # Metrics and traces
//
// With WithMeterProvider (given to NewInterceptors, and to the balancer
// builder so that its pickers report the instance they chose) the client
// interceptors record rpc.client.call.duration and the server
// interceptors rpc.server.call.duration, in seconds, with the same
// graylane.* attributes as the balancer's HTTP metrics: the picked
// instance's version, region and zone on the client, the server's own
// service and version (balancer.WithIdentity) on the server, the route's
// source and condition, and error.type as the gRPC status code's name.
// With WithTracerProvider the client interceptors make a client span per
// call, with the picked instance and the outcome, and write its context
// into the call's metadata (WithPropagator).
//
// A unary call is recorded when it returns; a stream from its start to
// its end, as grpc-go's own OpenTelemetry instrumentation defines it
// (grpc.OnFinish): RecvMsg returning io.EOF (OK) or an error, a failed
// SendMsg, or the stream's context ending (CANCELLED, DEADLINE_EXCEEDED),
// which gRPC itself watches; no goroutine of this package waits for it.
// The instance recorded is the last one picked for the call: the one that
// served it, after any retry (with the stats handler, the last attempt's,
// none if that attempt picked none).
//
// gRPC may make several attempts inside one call: transparent retries and
// a service config's retryPolicy. The stats handler (StatsHandler, which
// DialOptions installs with either provider) records each: a span per
// attempt ("Attempt.<method>", as grpc-go names it) under the call's span,
// with the instance picked for it, its outcome, graylane.retry and
// previous-rpc-attempts, whose context goes to the server in the attempt's
// metadata; and grpc.client.attempt.duration, grpc-go's name and unit
// (seconds), with the call's attributes and graylane.retry. It rides on
// what gRPC already does per attempt: the attempt's context, which the
// handler tags, is the one the picker sees, so the picker reports the
// instance as it does for calls, with no work of its own; without the
// options, the picker does nothing more than before.
package grpcroute
