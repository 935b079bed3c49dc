// Package rollout steps a gray release by a plan and rolls it back on the
// new version's figures: progressive delivery for client-side load
// balancing on a Consul fleet, moving a whole call chain at once.
//
// # Plan
//
// A [Plan] (YAML, [ParsePlan]) names the rule key whose spec the rollout
// edits (the spec graylane publish put at "graylane/spec/" + the key),
// the services that move together, the new and old versions (or [Newest]
// and [Oldest] running), the steps in percent, the hold of each step and
// the [Analysis]: thresholds on the new version's error rate and p99
// latency, absolute and as ratios to the old version's over the same
// window, the fewest requests a check needs, how many inconclusive checks
// in a row pause, and how many failed checks in a row roll back.
//
// # Controller
//
// [Start] records the rollout's [State] next to the spec; a [Controller]
// then, for each step, writes the share into the spec's default gray entry
// (the one without expression: [100-share, share]) and its rendering into
// the rule key in one transaction, with a check-and-set on each key's
// index. All services of the plan are in that one spec, so they shift as
// one route pair and a request never sees one service at a step and
// another at another; the spec's sticky key keeps each user on one side as
// the share only grows.
//
// After the hold the controller reads the [Figures] of both versions of
// every service over the window and [Judge]s them; the worst verdict wins:
//
//   - pass: the next step, or after the last (100) promotion: the phase
//     becomes [Promoted] and State.Drained records, per service, that the
//     drain gate (package balancer/drain) sees the old version drained
//     under the rule written;
//   - fail: counted; at Analysis.Failures in a row the new version goes
//     back to 0 percent and the phase becomes [RolledBack] with the
//     reason;
//   - inconclusive (fewer requests than Analysis.MinRequests): the step
//     holds again, so a rollback happens at the first step whose window
//     has enough requests. At Analysis.MaxInconclusive (default 3) in a
//     row the rollout pauses at the step's share, with a reason naming the
//     service and its requests: a service with too little traffic gives no
//     evidence to go on or to roll back, so a person decides; [Resume]
//     grants another hold and as many checks again.
//
// State.Failures and State.Inconclusive count the runs. A pass ends both;
// a fail ends a run of inconclusive checks; an inconclusive check between
// two fails neither counts nor ends their run.
//
// [Plan.Exposure] bounds what a bad new version is exposed to at each
// step: the step's share of the requests for at most Hold times
// Analysis.Failures when the windows have enough requests, with what the
// bound leaves out.
//
// graylane orchestrate may run alongside: it renders the rule again from
// the spec the controller wrote when versions come and go, and the
// controller takes such a rendering (it carries the rendered flags) for
// its own, only reading again when its check-and-set meets it.
//
// A spec that is not the one the controller last wrote, or a rule key
// written by hand, pauses the rollout with the reason: a person's edit is
// never overwritten. [Resume] continues the step with the hold it had
// left, taking the edited spec as it is. [Pause], [Abort] and [Promote]
// are the other commands (graylane rollout on the command line).
//
// # Resumption
//
// The state (plan, resolved versions, phase, step, when the step started
// and when the controller acts next, the latest checks) lives in the
// [Store]: in Consul ([ConsulStore]) at [StatePrefix] + the rule key. One
// controller is active per rollout through a Consul session lock at
// [LockPrefix] + the rule key; a standby that takes the lock over carries
// on the same step at the time recorded, so a step is never restarted
// from zero nor its hold skipped. [MemStore] is the in-memory store for
// demos and tests.
//
// A controller that stops releases the lock and a standby takes over at
// once; one that dies loses it within the check TTL ([WithCheckTTL], 3s by
// default), as graylane orchestrate does: each controller registers an
// instance of [ServiceName] on its agent with a TTL check that it feeds,
// and holds the lock with a session tied to that check and to the node's
// serfHealth, so Consul ends the session as soon as the check goes
// critical. The session's TTL ([NewConsulStore]) is only a backstop;
// Consul waits one to two of it. The session has no lock-delay: every
// commit checks the session in its transaction, so a former holder cannot
// write. A stopped controller deregisters its instance; a dead one's is
// removed by its agent after a minute.
//
// With Consul ACLs, a controller's token needs session write (on the node
// of its agent), service write on ServiceName, key write on the rule key,
// on its spec key ("graylane/spec/" + the rule key), on StatePrefix and
// LockPrefix + the rule key, and service read on the plan's services.
//
// # Figures
//
// [Prometheus] reads graylane's per-version request histograms (README
// "Observability") with PromQL over Prometheus' HTTP API; [Recorder] keeps
// requests in process for demos and tests. Every controller decision is
// driven by its injected [Clock].
//
// # Visibility
//
// [NewView] condenses a state for people: the plan in brief, the phase,
// the step and share, the next action and its time in words ([WhatNext]),
// the latest checks with the figures they used. graylane rollout status
// prints it; [DebugSection] shows it on a balancer's debug page
// (balancer.WithDebugSection), read only when the page is requested.
package rollout
