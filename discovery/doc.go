// Package discovery does all of graylane's I/O with Consul: it watches the
// healthy instances of services, watches rule documents in Consul KV, and
// registers the local process. A static in-memory registry stands in for
// Consul in examples and tests.
//
// # Instances and snapshots
//
// An [Instance] is read from a Consul health entry: address (the node's when
// the service has none), port, and version, region, zone, env, group and
// weight from Service.Meta and key=value tags, Meta winning. The key names
// are configurable with [WithKeys] (Kubernetes-synced services often use
// other names). A missing version is [DefaultVersion]. The start time comes
// from Register's graylane_started metadata or from the timestamp prefix of
// Nepxion's unique ID (meta spring_application_uuid, see [ParseStarted]).
// Entries that cannot be called (no address, a bad port) are left out and
// logged once; bad optional values (a weight that is not a number) are
// ignored and logged.
//
// Each change of a service publishes an immutable [Snapshot], grouped by
// version for O(1) look-ups, through an atomic pointer in the service's
// [Watch]. Identical answers publish nothing; subscribers are woken without
// ever blocking the watcher.
//
// Instance and Snapshot are declared in the leaf package
// [github.com/graylane/graylane/discovery/instance], which imports nothing
// of Consul and no networking, so that the pick engine (balancer/pick) can
// choose among instances without depending on this package. Here they are
// aliases of the same types, and the names to use.
//
// # Watching Consul
//
// A Consul agent accepts a limited number of HTTP connections from one
// client address (limits.http_max_conns_per_client, 200 by default), shared
// by every process on the host, and refuses the rest with 429 for as long
// as they are over. A blocking query holds a connection while it waits, so
// [NewConsul] does not hold one per watched service: every Consul of a
// process built on the same *api.Client (and query options) shares one
// change feed of at most six connections, whatever it watches. Two
// blocking queries say what changed — /v1/health/state/any, filtered to the
// checks of the watched services and of their nodes, and
// /v1/catalog/services for service definitions that change without their
// checks — and four readers read only the services that changed from
// /v1/health/service/<name>?passing, as blocking queries at the last index,
// which the agent answers from its streaming view or cache when those are
// on. [WithWatchPerService] restores one blocking query per service.
//
// A refused or failing read shows in the watch's [Watch.Err] (with
// [ErrAgentLimit] for the agent's connection limit), in [Consul.Stats],
// and in a warning that names the agent setting.
//
// Each blocking query follows Consul's guidance: an explicit wait time
// ([DefaultWaitTime], one request per wait time when idle), an index that
// goes backwards resets the loop with one read at once, an answer of index 0
// counts as 1 (so reads at once never become a hot loop), a token-bucket
// rate limit ([WithRateLimit]), and capped jittered backoff on errors
// ([WithBackoff]). While Consul is unreachable the last snapshot stays in
// force; after a failure the first request reads at once, without an
// index, so an agent that restarted without its state (indexes back at 1,
// a rule or instance gone) is picked up immediately, and blocking resumes
// at the index that read answered.
// Datacenter, tag, stale reads, agent cache and ACL token are options; TLS,
// address and the default token come from the client's api.Config and so
// from the usual CONSUL_HTTP_* environment.
//
// # Rules
//
// [NewConsulRules] watches a service's rule document in KV under two keys,
// the service's own and the group's ([NepxionRuleKeys] gives Nepxion's
// layout, "group-serviceId" and "group-group"). When both hold a document
// the service's is delivered with the group's as its [RuleDoc.Base], to be
// merged section by section as Nepxion does (rule.Merge). It delivers bytes
// only; package rule parses them. A deleted key, or a blank value (Nepxion's
// way to clear a rule), delivers "no rule" from that key: the other key's
// rule, or none.
//
// # Registering
//
// [Register] registers this process with an ID "<service>-<unique id>",
// version and other tags, metadata and a TTL or HTTP health check; it
// re-registers when the agent has lost the instance, and deregisters on
// Close. The default TTL check reflects whether the instance serves, not
// merely whether the process lives: every TTL/3 the registrar probes the
// instance's own listener (a TCP connect to its address and port, or a GET
// of [Check].ProbeHTTP) and reports passing only when the probe succeeds,
// critical at once when it fails. The probe runs in the process, so it
// needs no route from the agent to the instance and behaves the same on
// every Consul version (an agent-run TCP or HTTP check would need one);
// [Check].NoProbe restores a TTL fed while the process lives.
//
// # Goroutines
//
// Every goroutine belongs to a [Consul], [RuleWatch] or [Registrar] whose
// Close stops it and waits for it.
package discovery
