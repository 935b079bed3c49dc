package rollout

import (
	"fmt"
	"strings"
)

// String formats the event as one progress line: the time, the step, the
// new version's share, the figures of a check and the decision, e.g.
//
//	12:04:00 step 2/5  5%  check  svc-a new 500 req, 0.00% err, p99 12ms / old 9500 req, 0.01% err, p99 11ms: pass
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s step %d/%d %3d%%  %-8s", e.At.Format("15:04:05"), e.Step+1, e.Steps, e.Share, e.Action)
	for i, c := range e.Checks {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s new %v / old %v: %s", c.Service, c.New, c.Old, c.Outcome)
	}
	if e.Reason != "" {
		b.WriteString(" (" + e.Reason + ")")
	}
	return strings.TrimRight(b.String(), " ")
}
