package drain

import (
	"strconv"
	"strings"

	"github.com/graylane/graylane/internal/pattern"
	"github.com/graylane/graylane/rule"
)

// Verdict is the answer of [Analyze]: whether a rule can send a version any
// traffic, and why, in words fit for a log line.
type Verdict struct {
	// Receiving reports whether some request may be routed to the version.
	Receiving bool
	// Reason names the part of the rule that decided: for a receiving
	// version one route that reaches it, for a drained one what excludes it.
	Reason string
}

// Analyze reports whether r can route any request to instances of service
// at version. It is a pure function of its inputs, and it leans towards
// "receiving": a consumer that keeps consuming a little longer is harmless,
// one that stops while traffic still arrives is not.
//
// A rule decides each route type on its own, in tiers (blue-green
// conditions, gray conditions, <strategy>). Analyze collects every value the
// version and version-weight types can take for some request:
//
//   - every blue-green condition that references a route of the type may
//     match, so its route is a possible value (conditional traffic still
//     arrives, whatever the expression);
//   - every gray condition may match; of its routes, those drawn with weight
//     above 0 are possible values, those at weight 0 never are;
//   - a blue-green condition without expression (the default) matches
//     whatever the others do not, so when one names the type, the later
//     tiers are unreachable for it; a gray default closes <strategy> only
//     when every gray condition names the type, since one gray condition
//     serves all types and a type it does not name falls to <strategy>;
//   - gray conditions do not decide version-weight (Nepxion ignores a
//     version-weight-id there);
//   - otherwise the <strategy> value is possible, and when <strategy> has
//     none either, "no constraint" is.
//
// A version value admits the version when it does not name the service (a
// service missing from a map is not constrained) or when one of its
// ';'-separated alternatives matches it, wildcards '*' and '?' included
// ("1.*"), read exactly as the balancer's picks read them. A version-weight value admits it when it does not name the
// service or gives it (the first matching entry) a weight above 0. The
// version receives traffic when some version value and some version-weight
// value admit it. A nil rule constrains nothing: every version receives.
//
// Expressions are not evaluated: every condition counts as possibly true,
// even one that the rule's built-in header makes always false. Only the
// rule is read, so three things fall outside the verdict and can still send
// a drained version requests: an n-d-version header that a caller sets
// itself, the <strategy-failover> paths the balancer takes when the routed
// versions have no live instance, and region or address routes (they select
// instances, not versions). An empty version means [rule.DefaultVersion].
func Analyze(r *rule.Rule, service, version string) Verdict {
	if version == "" {
		version = rule.DefaultVersion
	}
	if r == nil {
		return Verdict{true, "no rule in force"}
	}
	versions := outcomes(r, rule.TypeVersion)
	weights := outcomes(r, rule.TypeVersionWeight)

	var vOK, wOK *outcome
	for i := range versions {
		if admitsVersion(versions[i].value, service, version) {
			vOK = &versions[i]
			break
		}
	}
	for i := range weights {
		if admitsWeight(weights[i].value, service, version) {
			wOK = &weights[i]
			break
		}
	}
	subject := service + " " + version
	switch {
	case vOK != nil && wOK != nil:
		reason := describe(vOK, service, "routes to "+subject)
		if !weights[0].unconstrained || len(weights) > 1 {
			reason += "; " + describe(wOK, service, "gives it weight")
		}
		return Verdict{true, reason}
	case vOK == nil:
		return Verdict{false, "no version route admits " + subject + ": " + list(versions, service)}
	default:
		return Verdict{false, "every version-weight gives " + subject + " weight 0: " + list(weights, service)}
	}
}

// outcome is one value a route type can take, and where in the rule it
// comes from.
type outcome struct {
	where         string // "blue-green condition c0 -> route-1", "strategy", ...
	value         rule.Value
	unconstrained bool // no tier yields a value: the type does not filter
}

// outcomes lists the values route type t can take for some request, in the
// order of the tiers.
func outcomes(r *rule.Rule, t rule.RouteType) []outcome {
	var out []outcome
	tiers := []struct {
		name  string
		conds []rule.Condition
		gray  bool
	}{
		{"blue-green", r.Release.BlueGreen, false},
		{"gray", r.Release.Gray, true},
	}
	for _, tier := range tiers {
		if tier.gray && (t == rule.TypeVersionWeight || t == rule.TypeRegionWeight) {
			continue // gray conditions do not decide the weight types
		}
		hasDefault, allNamed := false, true
		for i := range tier.conds {
			c := &tier.conds[i]
			id := c.RouteID(t)
			if id == "" {
				allNamed = false
				continue
			}
			if c.Expression == nil {
				hasDefault = true
			}
			label := tier.name + " condition " + strconv.Quote(c.ID)
			if c.Expression == nil {
				label = tier.name + " default condition " + strconv.Quote(c.ID)
			}
			if !tier.gray {
				if rt := findRoute(r, id, t); rt != nil {
					out = append(out, outcome{where: label + " -> " + rt.ID, value: rt.Value})
				}
				continue
			}
			ws, err := rule.ParseWeights(id)
			if err != nil {
				// A validated rule never gets here; a hand-built one routes
				// nowhere with a bad list, so it adds no value.
				continue
			}
			for _, w := range ws {
				if w.Weight <= 0 {
					continue
				}
				if rt := findRoute(r, w.Key, t); rt != nil {
					out = append(out, outcome{where: label + " -> " + rt.ID + " (weight " + strconv.Itoa(w.Weight) + ")", value: rt.Value})
				}
			}
		}
		// A blue-green default for t closes the later tiers for t. A gray
		// default does only when every gray condition names t: one gray
		// condition is chosen per request, and one that does not name t
		// sends t on to <strategy>.
		if hasDefault && (!tier.gray || allNamed) {
			return out
		}
	}
	if v := r.Strategy.Get(t); !v.IsZero() {
		return append(out, outcome{where: "strategy " + t.String(), value: v})
	}
	return append(out, outcome{where: "no " + t.String() + " constraint", unconstrained: true})
}

func findRoute(r *rule.Rule, id string, t rule.RouteType) *rule.Route {
	for i := range r.Release.Routes {
		if rt := &r.Release.Routes[i]; rt.ID == id && rt.Type == t {
			return rt
		}
	}
	return nil
}

// admitsVersion reports whether a version value lets version of service
// through.
func admitsVersion(v rule.Value, service, version string) bool {
	s, ok := v.For(service)
	if !ok {
		return true
	}
	return pattern.MatchAny(s, version)
}

// admitsWeight reports whether a version-weight value gives version of
// service a weight above 0. A list that does not parse gives every version
// weight 0, as in the balancer.
func admitsWeight(v rule.Value, service, version string) bool {
	s, ok := v.For(service)
	if !ok {
		return true
	}
	ws, err := rule.ParseWeights(s)
	if err != nil {
		return false
	}
	for _, w := range ws {
		if pattern.MatchAny(w.Key, version) {
			return w.Weight > 0
		}
	}
	return false
}

func describe(o *outcome, service, what string) string {
	if o.unconstrained {
		return o.where
	}
	s, ok := o.value.For(service)
	if !ok {
		return o.where + " does not constrain " + service
	}
	return o.where + " " + what + " (" + s + ")"
}

// list summarises the outcomes for service, at most a few of them.
func list(os []outcome, service string) string {
	const most = 4
	var b strings.Builder
	for i, o := range os {
		if i == most {
			b.WriteString("; and " + strconv.Itoa(len(os)-most) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		s, _ := o.value.For(service)
		b.WriteString(o.where + " = " + strconv.Quote(s))
	}
	return b.String()
}
