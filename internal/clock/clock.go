// Package clock holds the real-time default behind the injectable sleeps
// of the packages that wait between attempts (discovery's blocking-query
// back-off, the balancer's retry back-off): one definition, so that every
// wait ends the same way when its context does.
package clock

import (
	"context"
	"time"
)

// Sleep waits d, or less if ctx ends first, and reports whether the full
// time passed. A d of zero or less does not wait: it reports whether ctx
// is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
