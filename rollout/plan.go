package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graylane/graylane/rule"
)

// Plan is a rollout plan: which services move together, under which rule
// key, from which version to which, in which steps, and what the new
// version's figures must show at each step.
type Plan struct {
	// RuleKey is the rule key the services' rule is rendered to; the spec
	// the controller edits is published next to it (see
	// graylane publish).
	RuleKey string
	// Services move together: they shift in the one spec and rule, as one
	// route pair, so a request never sees one at a step and another at
	// another.
	Services []string
	// New and Old are the versions compared; [Newest] and [Oldest] stand
	// for the newest and oldest version running, resolved per service when
	// the rollout starts.
	New, Old string
	// Steps are the new version's shares in percent, rising, the last 100.
	Steps []int
	// Hold is how long each step holds before its figures are checked.
	Hold time.Duration
	// Analysis is what a check requires of the new version.
	Analysis Analysis
}

// Newest and Oldest are the version placeholders a plan may use for New and
// Old.
const (
	Newest = "newest"
	Oldest = "oldest"
)

// DefaultMaxInconclusive is Analysis.MaxInconclusive when the plan does not
// set it.
const DefaultMaxInconclusive = 3

// Analysis holds a check's thresholds. A zero threshold is not checked.
type Analysis struct {
	// Window is the span the figures are read over, ending at the check;
	// it defaults to the plan's Hold.
	Window time.Duration
	// MinRequests is the fewest requests the new version must have served
	// in the window for the check to count; with fewer, the check is
	// inconclusive and repeated after another hold.
	MinRequests int64
	// MaxInconclusive is how many inconclusive checks in a row at one step
	// pause the rollout (default 3): a service with too little traffic
	// for the analysis gives no evidence either way, so the controller
	// neither goes on nor rolls back, and says so. Resume grants as many
	// checks again.
	MaxInconclusive int
	// MaxErrorRate is the highest error rate (0 to 1) of the new version.
	MaxErrorRate float64
	// MaxErrorRatio is the highest ratio of the new version's error rate to
	// the old version's. When the old version had no errors, the new one
	// passes only with none either, unless MaxErrorRate allows some.
	MaxErrorRatio float64
	// MaxP99 is the highest 99th percentile latency of the new version.
	MaxP99 time.Duration
	// MaxP99Ratio is the highest ratio of the new version's p99 latency to
	// the old version's.
	MaxP99Ratio float64
	// Failures is how many failed checks in a row roll the release back
	// (default 1). A pass ends the run; an inconclusive check between two
	// failed ones neither counts nor ends it, having no evidence either
	// way.
	Failures int
}

// PlanError is a rejected plan: where (the key path, line and column) and
// what is wrong, in the style of [rule.Error]. It wraps [rule.ErrSyntax] or
// [rule.ErrInvalid].
type PlanError struct {
	Path         string
	Line, Column int
	Msg          string
	Err          error
}

// Error formats the error as "rollout plan: line L, column C: path: msg".
func (e *PlanError) Error() string {
	var b strings.Builder
	b.WriteString("rollout plan: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel.
func (e *PlanError) Unwrap() error { return e.Err }

// maxPlanSize bounds a plan document.
const maxPlanSize = 1 << 20

var planKeys = []string{"ruleKey", "services", "new", "old", "steps", "hold", "analysis"}
var analysisKeys = []string{"window", "minRequests", "maxInconclusive", "maxErrorRate", "maxErrorRatio", "maxP99", "maxP99Ratio", "failures"}

// ParsePlan reads a plan written as YAML (or JSON):
//
//	ruleKey: my-group-my-group
//	services: [svc-a, svc-b, svc-c]
//	new: "1.1"            # or newest
//	old: "1.0"            # or oldest (the default)
//	steps: [1, 5, 25, 50, 100]
//	hold: 5m
//	analysis:
//	  window: 5m          # default: hold
//	  minRequests: 200    # fewer in the window: inconclusive, held again
//	  maxInconclusive: 3  # that many inconclusive in a row pause (default 3)
//	  maxErrorRate: 0.01
//	  maxErrorRatio: 2
//	  maxP99: 300ms
//	  maxP99Ratio: 1.5
//	  failures: 2
//
// Unknown keys are rejected, so a misspelt threshold is never silently
// unchecked; every error names the key, line and column.
func ParsePlan(data []byte) (*Plan, error) {
	if len(data) > maxPlanSize {
		return nil, &PlanError{Msg: fmt.Sprintf("document of %d bytes exceeds %d", len(data), maxPlanSize), Err: rule.ErrInvalid}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		msg := err.Error()
		line := 0
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// "yaml: line 3: did not find expected key"
			if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
				if i := strings.IndexByte(rest, ':'); i > 0 {
					if n, err := strconv.Atoi(rest[:i]); err == nil {
						line, msg = n, strings.TrimSpace(rest[i+1:])
					}
				}
			}
		}
		if err.Error() == "EOF" {
			msg = "empty document"
		}
		return nil, &PlanError{Line: line, Msg: msg, Err: rule.ErrSyntax}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p := &Plan{Old: Oldest}
	at := map[string]*yaml.Node{"": root}
	err := eachKey(root, "", planKeys, func(k string, v *yaml.Node) error {
		at[k] = v
		switch k {
		case "ruleKey":
			return str(v, k, &p.RuleKey)
		case "services":
			if v.Kind != yaml.SequenceNode {
				return bad(v, k, "must be a list of service names")
			}
			for i, n := range v.Content {
				path := k + "[" + strconv.Itoa(i+1) + "]"
				at[path] = n
				var s string
				if err := str(n, path, &s); err != nil {
					return err
				}
				p.Services = append(p.Services, s)
			}
		case "new":
			return str(v, k, &p.New)
		case "old":
			return str(v, k, &p.Old)
		case "steps":
			if v.Kind != yaml.SequenceNode {
				return bad(v, k, "must be a list of percentages")
			}
			for i, n := range v.Content {
				path := k + "[" + strconv.Itoa(i+1) + "]"
				at[path] = n
				s, err := strconv.Atoi(n.Value)
				if n.Kind != yaml.ScalarNode || err != nil {
					return bad(n, path, "step "+strconv.Quote(n.Value)+" is not a whole percentage")
				}
				p.Steps = append(p.Steps, s)
			}
		case "hold":
			return dur(v, k, &p.Hold)
		case "analysis":
			return eachKey(v, k, analysisKeys, func(ak string, av *yaml.Node) error {
				path := k + "/" + ak
				at[path] = av
				a := &p.Analysis
				switch ak {
				case "window":
					return dur(av, path, &a.Window)
				case "minRequests":
					n, err := strconv.ParseInt(av.Value, 10, 64)
					if av.Kind != yaml.ScalarNode || err != nil {
						return bad(av, path, strconv.Quote(av.Value)+" is not a whole number")
					}
					a.MinRequests = n
				case "maxInconclusive":
					return whole(av, path, &a.MaxInconclusive)
				case "maxErrorRate":
					return num(av, path, &a.MaxErrorRate)
				case "maxErrorRatio":
					return num(av, path, &a.MaxErrorRatio)
				case "maxP99":
					return dur(av, path, &a.MaxP99)
				case "maxP99Ratio":
					return num(av, path, &a.MaxP99Ratio)
				case "failures":
					return whole(av, path, &a.Failures)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		var pe *PlanError
		if errors.As(err, &pe) {
			if n := nearest(at, pe.Path); n != nil {
				pe.Line, pe.Column = n.Line, n.Column
			}
		}
		return nil, err
	}
	return p, nil
}

// nearest returns the node at path or, failing that, at its closest parent.
func nearest(at map[string]*yaml.Node, path string) *yaml.Node {
	for {
		if n := at[path]; n != nil {
			return n
		}
		i := strings.LastIndexAny(path, "/[")
		if i < 0 {
			return at[""]
		}
		path = path[:i]
	}
}

// Check validates a plan built in code, as ParsePlan validates a parsed
// one, and fills in the defaults (Old, Window, MaxInconclusive, Failures).
func (p *Plan) Check() error {
	if p == nil {
		return &PlanError{Msg: "nil plan", Err: rule.ErrInvalid}
	}
	return p.check()
}

func (p *Plan) check() error {
	fail := func(path, msg string) error { return &PlanError{Path: path, Msg: msg, Err: rule.ErrInvalid} }
	if strings.TrimSpace(p.RuleKey) == "" {
		return fail("ruleKey", "missing rule key")
	}
	if len(p.Services) == 0 {
		return fail("services", "empty service list")
	}
	for i, s := range p.Services {
		path := "services[" + strconv.Itoa(i+1) + "]"
		if strings.TrimSpace(s) == "" || strings.TrimSpace(s) != s {
			return fail(path, "service name "+strconv.Quote(s)+" is empty or has surrounding white space")
		}
		if slices.Index(p.Services, s) != i {
			return fail(path, "duplicate service "+strconv.Quote(s))
		}
	}
	if p.Old == "" {
		p.Old = Oldest
	}
	if strings.TrimSpace(p.New) == "" {
		return fail("new", "missing new version (a version, or newest)")
	}
	if p.New == Oldest {
		return fail("new", "the new version cannot be the oldest running")
	}
	if p.Old == Newest {
		return fail("old", "the old version cannot be the newest running")
	}
	if p.New == p.Old {
		return fail("new", "new and old are the same version "+strconv.Quote(p.New))
	}
	if len(p.Steps) == 0 {
		return fail("steps", "no steps")
	}
	prev := 0
	for i, s := range p.Steps {
		path := "steps[" + strconv.Itoa(i+1) + "]"
		if s <= prev || s > 100 {
			return fail(path, fmt.Sprintf("step %d must be above the one before (%d) and at most 100", s, prev))
		}
		prev = s
	}
	if prev != 100 {
		return fail("steps["+strconv.Itoa(len(p.Steps))+"]", fmt.Sprintf("the last step is %d; it must be 100", prev))
	}
	if p.Hold <= 0 {
		return fail("hold", "missing or non-positive hold")
	}
	a := &p.Analysis
	if a.Window < 0 {
		return fail("analysis/window", "negative window")
	}
	if a.Window == 0 {
		a.Window = p.Hold
	}
	if a.MinRequests < 0 {
		return fail("analysis/minRequests", "negative request count")
	}
	if a.MaxInconclusive < 0 {
		return fail("analysis/maxInconclusive", "negative count")
	}
	if a.MaxInconclusive == 0 {
		a.MaxInconclusive = DefaultMaxInconclusive
	}
	if a.MaxErrorRate < 0 || a.MaxErrorRate > 1 || math.IsNaN(a.MaxErrorRate) {
		return fail("analysis/maxErrorRate", "an error rate is from 0 to 1")
	}
	for path, r := range map[string]float64{"analysis/maxErrorRatio": a.MaxErrorRatio, "analysis/maxP99Ratio": a.MaxP99Ratio} {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return fail(path, "a ratio is a finite number of 0 (unchecked) or more")
		}
		if r > 0 && r < 1 {
			return fail(path, fmt.Sprintf("ratio %g below 1 would fail a new version as good as the old", r))
		}
	}
	if a.MaxP99 < 0 {
		return fail("analysis/maxP99", "negative latency")
	}
	if a.MaxErrorRate == 0 && a.MaxErrorRatio == 0 && a.MaxP99 == 0 && a.MaxP99Ratio == 0 {
		return fail("analysis", "no threshold: name at least one of maxErrorRate, maxErrorRatio, maxP99, maxP99Ratio")
	}
	if a.Failures < 0 {
		return fail("analysis/failures", "negative count")
	}
	if a.Failures == 0 {
		a.Failures = 1
	}
	return nil
}

// Exposure bounds what a new version that fails its checks is exposed to
// at step i (0-based; out of range: 0, 0). While the step's weights are in
// force, every request that enters the chain draws the new side with
// probability share percent (over n requests the count spreads
// binomially around share*n/100; with the spec's sticky key it is share
// percent of the users that draw it, each with all of their requests),
// and when every check's window has
// Analysis.MinRequests, the controller rolls the new version back at most
// d after the step's weights were written: d is Hold times
// Analysis.Failures, the fails in a row a rollback takes, one hold apart.
// So the requests a bad version served at step i are about share percent
// of those the chain received in the d after the step started; rolled
// back at step i, it served the earlier steps' too, which passed their
// checks.
//
// The bound leaves out:
//   - the check at the end of d (its queries and the write) and the
//     rollback's propagation: a client applies the new rule about one
//     blocking-query round trip after the write, and the requests it
//     routed before are still served;
//   - thin windows: each inconclusive check holds the step once more, up
//     to Analysis.MaxInconclusive in a row, so a step lasts at most d
//     times MaxInconclusive before it rolls back or pauses; paused, it
//     keeps its share until a person resumes, promotes or aborts;
//   - a controller that is down, or figures that cannot be read: the step
//     keeps its weights until a standby takes the lock over, or until a
//     check, tried again at each poll, reads them;
//   - requests that reach the new version otherwise than by the step's
//     weights: a spec's other gray or blue-green entries, or a caller that
//     names the version in its routing headers.
func (p *Plan) Exposure(i int) (share int, d time.Duration) {
	if p == nil || i < 0 || i >= len(p.Steps) {
		return 0, 0
	}
	return p.Steps[i], p.Hold * time.Duration(max(p.Analysis.Failures, 1))
}

// eachKey calls fn for each key of the mapping n in order, rejecting keys
// not in allowed and keys given twice.
func eachKey(n *yaml.Node, path string, allowed []string, fn func(k string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return bad(n, path, "must be a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := k.Value
		if path != "" {
			kp = path + "/" + k.Value
		}
		if !slices.Contains(allowed, k.Value) {
			return bad(k, kp, "unknown key (want one of "+strings.Join(allowed, ", ")+")")
		}
		if seen[k.Value] {
			return bad(k, kp, "duplicate key")
		}
		seen[k.Value] = true
		if err := fn(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func bad(n *yaml.Node, path, msg string) error {
	return &PlanError{Path: path, Line: n.Line, Column: n.Column, Msg: msg, Err: rule.ErrInvalid}
}

func str(n *yaml.Node, path string, out *string) error {
	if n.Kind != yaml.ScalarNode {
		return bad(n, path, "must be a single value")
	}
	*out = strings.TrimSpace(n.Value)
	return nil
}

func dur(n *yaml.Node, path string, out *time.Duration) error {
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil {
		return bad(n, path, strconv.Quote(n.Value)+" is not a duration (e.g. 30s, 5m)")
	}
	*out = d
	return nil
}

func whole(n *yaml.Node, path string, out *int) error {
	i, err := strconv.Atoi(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil {
		return bad(n, path, strconv.Quote(n.Value)+" is not a whole number")
	}
	*out = i
	return nil
}

func num(n *yaml.Node, path string, out *float64) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return bad(n, path, strconv.Quote(n.Value)+" is not a number")
	}
	*out = f
	return nil
}
