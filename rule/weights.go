package rule

import (
	"slices"
	"strconv"
	"strings"
)

// MaxWeight is the largest weight accepted in a weight list.
const MaxWeight = 1_000_000

// Weight is one entry of a weight list such as "1.0=90;1.1=10" (a
// version-weight or region-weight value) or "route-0=90;route-1=10" (a gray
// condition's reference).
type Weight struct {
	Key    string
	Weight int
}

// ParseWeights parses a weight list "key=W;key=W": keys non-empty and
// unique, weights whole numbers from 0 to [MaxWeight], at least one above 0.
// Weights need not add up to 100; white space around keys and weights is
// ignored.
func ParseWeights(s string) ([]Weight, error) {
	ws, msg := parseWeights(s)
	if msg != "" {
		return nil, &Error{Msg: msg, Err: ErrInvalid}
	}
	return ws, nil
}

func parseWeights(s string) ([]Weight, string) {
	s = trimSpace(s)
	if s == "" {
		return nil, "empty weight list"
	}
	var ws []Weight
	var keys dupSet
	total := 0
	for part := range strings.SplitSeq(s, ";") {
		part = trimSpace(part)
		if part == "" {
			return nil, "empty entry in weight list " + strconv.Quote(s)
		}
		k, w, ok := strings.Cut(part, "=")
		if !ok {
			return nil, "entry " + strconv.Quote(part) + " needs the form key=weight"
		}
		k, w = trimSpace(k), trimSpace(w)
		if k == "" {
			return nil, "entry " + strconv.Quote(part) + " has no key"
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || w[0] == '+' || w[0] == '-' {
			return nil, "weight " + strconv.Quote(w) + " of " + strconv.Quote(k) + " is not a whole number >= 0"
		}
		if n > MaxWeight {
			return nil, "weight " + w + " of " + strconv.Quote(k) + " exceeds " + strconv.Itoa(MaxWeight)
		}
		if !keys.add(k) {
			return nil, "key " + strconv.Quote(k) + " appears twice in weight list"
		}
		ws = append(ws, Weight{k, n})
		total += n
	}
	if total == 0 {
		return nil, "all weights are 0 in " + strconv.Quote(s)
	}
	return ws, ""
}

func formatWeights(ws []Weight) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(w.Key)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(w.Weight))
	}
	return b.String()
}

// parseGrayWeights reads a gray condition's reference as Nepxion's
// WeightEntityWrapper does, so a Go hop loads every rule a Java hop loads:
// entries split on ';' (empty ones skipped), each "id=weight"; a weight that
// is missing, not a whole number or negative reads as 0, and a repeated id
// keeps its first place and its last weight. Only an entry with no id at
// all ("=") is an error, as in Nepxion. notes says what was read leniently.
func parseGrayWeights(s string) (ws []Weight, notes []string, msg string) {
	for part := range strings.SplitSeq(s, ";") {
		if trimSpace(part) == "" {
			continue
		}
		var fields []string
		for f := range strings.SplitSeq(part, "=") {
			if f != "" {
				fields = append(fields, f)
			}
		}
		if len(fields) == 0 {
			return nil, nil, "entry " + strconv.Quote(part) + " has no route id"
		}
		k := trimSpace(fields[0])
		w := 0
		if len(fields) < 2 {
			notes = append(notes, strconv.Quote(part)+" has no weight: read as "+k+"=0")
		} else if n, err := strconv.ParseInt(trimSpace(fields[1]), 10, 32); err != nil || n < 0 {
			notes = append(notes, strconv.Quote(part)+" has no usable weight: read as "+k+"=0")
		} else {
			w = int(n)
		}
		if i := slices.IndexFunc(ws, func(x Weight) bool { return x.Key == k }); i >= 0 {
			notes = append(notes, "route id "+strconv.Quote(k)+" repeated: the last weight counts")
			ws[i].Weight = w
			continue
		}
		ws = append(ws, Weight{k, w})
	}
	return ws, notes, ""
}
