package rule

import (
	"slices"
	"strconv"
	"strings"
)

// MaxWeight is the largest weight of an orchestration spec's gray entry.
// (Weight lists in rules take any weight Nepxion reads; see ParseWeights.)
const MaxWeight = 1_000_000

// Weight is one entry of a weight list such as "1.0=90;1.1=10" (a
// version-weight or region-weight value) or "route-0=90;route-1=10" (a gray
// condition's reference).
type Weight struct {
	Key    string
	Weight int
}

// ParseWeights parses a weight list "key=W;key=W" as Nepxion's
// WeightEntityWrapper reads one, so a Go hop weighs what a Java hop weighs:
// entries split on ';' (empty ones skipped), white space around keys and
// weights ignored, a weight that is missing, not a whole number, negative
// or beyond 2^31-1 read as 0, and a repeated key keeping its first place
// and its last weight. Weights need not add up to 100. It fails for a list
// with no entry, an entry without key ("="), which Nepxion cannot read
// either, and a list without a weight above 0, which routes nowhere.
func ParseWeights(s string) ([]Weight, error) {
	ws, msg := parseWeights(s)
	if msg != "" {
		return nil, &Error{Msg: msg, Err: ErrInvalid}
	}
	return ws, nil
}

func parseWeights(s string) ([]Weight, string) {
	ws, _, msg := parseGrayWeights(s)
	if msg != "" {
		return nil, msg
	}
	if len(ws) == 0 {
		return nil, "empty weight list"
	}
	for _, w := range ws {
		if w.Weight > 0 {
			return ws, ""
		}
	}
	return nil, "all weights are 0 in " + strconv.Quote(trimSpace(s))
}

// checkWeights checks a version-weight or region-weight value when a rule
// is loaded: it must be a list Nepxion can read (see ParseWeights). What is
// read leniently, and a list whose weights are all 0 (Nepxion loads it; it
// routes nowhere), is reported to ignore under path.
func checkWeights(s, path string, ignore func(string)) string {
	ws, notes, msg := parseGrayWeights(s)
	if msg != "" {
		return msg
	}
	if len(ws) == 0 {
		return "empty weight list"
	}
	if ignore == nil {
		return ""
	}
	for _, n := range notes {
		ignore(path + ": " + n)
	}
	if _, msg := parseWeights(s); msg != "" {
		ignore(path + ": " + msg + ": routes nowhere")
	}
	return ""
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
