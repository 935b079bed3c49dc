package pick

import "github.com/graylane/graylane/rule"

// Source says what set a route's version constraint at this hop: a tier of
// the local rule, or the call itself. Metrics, traces and logs label calls
// with it; it never travels between processes (the next hop sees the
// route arrive with the call: SourceHeader).
type Source string

// The sources of a route.
const (
	// SourceNone: nothing constrains the version.
	SourceNone Source = "none"
	// SourceBlueGreen, SourceGray and SourceStrategy: the local rule's
	// blue-green condition, gray condition (and weighted draw) or strategy
	// fallback decided.
	SourceBlueGreen Source = Source(rule.TierBlueGreen)
	SourceGray      Source = Source(rule.TierGray)
	SourceStrategy  Source = Source(rule.TierStrategy)
	// SourceHeader: the route arrived with the call (n-d-* headers, W3C
	// baggage or message headers) and was followed as it came.
	SourceHeader Source = "header"
)

// SourceOf returns the source of a rule decision's tier.
func SourceOf(t rule.Tier) Source {
	if t == rule.TierNone {
		return SourceNone
	}
	return Source(t)
}

// Origin says how a route came to be at this hop: its Source and, when a
// blue-green or gray condition decided, that condition's id. The zero
// Origin is SourceNone.
type Origin struct {
	Source    Source
	Condition string
}

// SourceOrNone returns o's source, SourceNone for the zero Origin.
func (o *Origin) SourceOrNone() Source {
	if o.Source == "" {
		return SourceNone
	}
	return o.Source
}
