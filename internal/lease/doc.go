// Package lease makes one process the active one among its copies: it
// holds a Consul lock with a session tied to a health check that the
// process feeds, so that a copy that dies or stalls loses the lock within
// the check's TTL and a standby takes over, and one that stops hands over
// at once. graylane orchestrate and the rollout controller hold their
// locks through it.
//
// # Holding
//
// [New] describes a [Lock]: the service whose instance the process
// registers (graylane-orchestrate, graylane-rollout), the KV key of the
// lock, the holder's name (the lock's value) and the instance's meta.
// [Lock.Hold] then, in order:
//
//   - registers an instance of the service on the client's agent with a
//     TTL check, passing, that the agent removes a minute after it went
//     critical (Consul's minimum), and feeds the check every third of its
//     TTL ([WithCheckTTL], [DefaultCheckTTL]);
//   - creates a session tied to that check and to the node's serfHealth,
//     with the release behavior and no lock-delay (below), and renews it
//     every half of its TTL ([WithSessionTTL], [DefaultSessionTTL]);
//   - waits for the lock at the key with that session.
//
// It returns a [Term], whose context ends when the lock is lost (or the
// context given to Hold ends), and whose [Term.Release] unlocks, destroys
// the session, stops feeding the check and deregisters the instance,
// giving up after 5 seconds on an agent that does not answer (Consul then
// frees the lock when the session's check goes critical). A
// standby waits in Hold with its own instance registered and its check
// fed, so that it holds a live session the moment the lock is free.
//
// # Losing the lock
//
// Consul ends the session, and so frees the lock, as soon as the check
// goes critical: the process died or stalled for a check TTL, or its agent
// stopped hearing from it. The node's serfHealth ends it when the node
// fails or leaves (a session tied to checks names the node check
// explicitly). The session's own TTL only stays as a backstop: Consul
// invalidates an unrenewed session one to two TTLs after its last renewal,
// and accepts TTLs of 10s to 24h.
//
// The session has no lock-delay. After a session is invalidated, a
// lock-delay refuses the lock to others for a while, to protect a
// resource from a former holder that still believes it holds the lock
// (its check went critical while it was paused, say). The holders here
// write only in transactions that check the session (Consul's
// check-session operation on the lock key), so a former holder can never
// write after losing the lock, and a delay would only slow the takeover:
// any delay at all can refuse a standby that reacts within it, and
// consul/api's Lock then waits five seconds before it asks again.
//
// With Consul ACLs, the token needs session write on the node of its
// agent, service write on the service, and key write on the lock's key.
package lease
