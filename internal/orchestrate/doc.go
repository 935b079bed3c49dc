// Package orchestrate keeps a rendered rule in step with an orchestration
// spec and the live catalog, for fleets where Java (Nepxion) and Go hops
// share one rule.
//
// Java services cannot read a spec, and a spec that every Go hop expands
// against its own view of the catalog can mix sides while instances come
// and go. So a spec is published next to the rule, not in its place:
//
//   - the spec lives at [SpecKey] of the rule key ("graylane/spec/" + the
//     rule key, e.g. graylane/spec/my-group-svc-a);
//   - the rule key itself (Nepxion's "<group>-<service>" or
//     "<group>-<group>") holds the spec rendered as a Nepxion XML rule,
//     written with the [RenderedFlags] KV flags so that a rendering can be
//     told from a rule a person wrote.
//
// The rendered rule is the source of truth: Java hops read it, and graylane
// hops watch the same rule key and never see the spec, so every hop routes
// by the same document. The spec is input for [Publish] and for an
// [Orchestrator] only.
//
// An Orchestrator re-renders the rule whenever the spec or the versions of
// its services change. It writes in one Consul transaction that checks that
// it still holds the lock, that the spec is the one it rendered, and that
// the rule key is at the index it read (check-and-set); when any of these
// moved, it reads both again and renders again, so a spec published at the
// same time is never overwritten by a rendering of the spec before it.
//
// A rule key edited by a person (a value without RenderedFlags) after the
// spec was last published is left as it is, with a warning: the newer
// document wins, and a person who pastes a rule during an incident keeps
// it until the spec is published again ([Publish] writes both; a spec
// written alone with other content also counts, as newer than the edit). A
// deleted rule key is rendered again: to stop, delete the spec, which
// leaves the rule as it is, then the rule.
//
// One Orchestrator per rule key is active at a time: each holds a Consul
// session and competes for the lock at [LockKey] ("graylane/lock/" + the
// rule key). Run several for availability; when the active one stops, its
// session is destroyed and another takes over at once.
//
// When it dies, another takes over within the check TTL ([WithCheckTTL],
// [DefaultCheckTTL]): each Orchestrator registers an instance of
// [ServiceName] on its agent with a TTL check that it feeds, and creates its
// session tied to that check and to the node's serfHealth, so Consul ends
// the session as soon as the check goes critical, and the lock goes to a
// standby. The session's TTL ([WithSessionTTL]) stays as a backstop; Consul
// waits one to two of it. The session has no lock-delay: a lock-delay
// keeps the lock from others for a while in case a former holder still
// acts, but a former holder cannot write here (every write checks the
// session in its transaction). A stopped Orchestrator deregisters its
// instance; a dead one's is removed by its agent after a minute. The lock
// is held through package lease, which the rollout controller (package
// rollout) uses for its own.
//
// With Consul ACLs, an Orchestrator's token needs session write (on the
// node of its agent), service write on [ServiceName], key write on the rule key and on LockKey of it, key
// read on SpecKey of it, and service read on the spec's services; Publish
// needs key write on the rule key and on SpecKey of it.
//
// A version that leaves the catalog stays in the rendering for the
// expansion hold (as in the balancer), so a momentary partial inventory
// (instances re-registering one by one after an agent restart) never
// re-labels route-0. A newly active Orchestrator seeds the hold with the
// versions the current rendering names, so a takeover in the middle of such
// a window holds them too.
package orchestrate
