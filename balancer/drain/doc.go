// Package drain tells a local consumer whether its own version still
// receives traffic under the release rule in force, so that an old version
// taken to weight 0 stops consuming from a queue, and starts again if the
// release is rolled back.
//
// # Why
//
// Moving a release's HTTP traffic is not the end of it: the old system's
// Kafka consumers, in the same consumer group, keep taking messages at
// weight 0. That is harmless only while consumption is idempotent and both
// versions handle every message the same way; the clean way is to pause the
// old version's consumers once the rule no longer sends it traffic, and to
// resume them when a rollback routes to it again.
//
// # Use
//
//	gate := drain.NewGate("order-service", "1.0", b) // b: the *balancer.Balancer
//	defer gate.Close()
//	for ctx.Err() == nil {
//		if !gate.Receiving() {
//			consumer.Pause()
//			if err := gate.Wait(ctx, true); err != nil {
//				break
//			}
//			consumer.Resume()
//		}
//		consume(ctx)
//	}
//
// [Gate.Changes] delivers each change on a channel for select loops. The
// analysis itself is the pure function [Analyze], whose documentation says
// exactly when a version counts as receiving. examples/drain is a runnable
// consumer loop.
package drain
