package rule

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/graylane/graylane/expr"
)

// nepxionCase is one entry of testdata/nepxion-cases/cases.json: a rule
// from Nepxion's own material, a request, and the routes Nepxion's test or
// page expects.
type nepxionCase struct {
	Name    string `json:"name"`
	Origin  string `json:"origin"`
	Rule    string `json:"rule"`
	Note    string `json:"note"`
	Request struct {
		Header    map[string]string `json:"header"`
		Parameter map[string]string `json:"parameter"`
		Cookie    []string          `json:"cookie"` // Cookie header lines, as the test sends them
	} `json:"request"`
	// Want maps a route type ("version", ...) to the routes it takes, each
	// with its share in percent. A route maps a service to the value it must
	// carry, null for a service it must leave unconstrained; "*" stands for
	// a plain value that applies to every service. A type not listed must
	// be unconstrained.
	Want map[string][]wantRoute `json:"want"`
}

// caseDraws is how many evenly spread draws decide each case: the version
// shares of a gray split come out exact for weights that add up to 100.
const caseDraws = 1000

// TestNepxionCases decides the cases of Nepxion's DiscoveryGuide automation
// tests and of the Discovery wiki with rule.Parse and Decide, and compares
// the routes with what Nepxion's test or page expects. Each case names its
// origin.
func TestNepxionCases(t *testing.T) {
	var doc struct {
		About string        `json:"about"`
		Cases []nepxionCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "nepxion-cases/cases.json")))
	dec.DisallowUnknownFields() // a misspelt key must not drop part of a case
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, tt := range doc.Cases {
		t.Run(tt.Name, func(t *testing.T) {
			if tt.Origin == "" {
				t.Fatal("case without origin")
			}
			r, err := Parse(readFile(t, filepath.Join("nepxion-cases", tt.Rule)))
			if err != nil {
				t.Fatalf("%s: %v", tt.Rule, err)
			}
			v := caseValues(caseRequest(t, &tt))
			got := make(map[RouteType]map[string]*drawn) // type -> value encoding -> draws
			step := uint64(math.MaxUint64 / caseDraws)
			for i := range caseDraws {
				d := r.Decide(v, uint64(i)*step+step/2)
				for typ := range numTypes {
					val := d.Get(typ)
					if val.IsZero() {
						continue
					}
					if got[typ] == nil {
						got[typ] = map[string]*drawn{}
					}
					if got[typ][val.String()] == nil {
						got[typ][val.String()] = &drawn{val: val}
					}
					got[typ][val.String()].n++
				}
			}
			for k := range tt.Want {
				if _, ok := parseRouteType(k); !ok {
					t.Errorf("unknown route type %q in want", k)
				}
			}
			for typ := range numTypes {
				checkCaseType(t, typ, tt.Want[typ.String()], got[typ])
			}
			if t.Failed() {
				t.Logf("origin: %s", tt.Origin)
				if tt.Note != "" {
					t.Logf("note: %s", tt.Note)
				}
			}
		})
	}
}

// drawn is a value a route type took and in how many draws.
type drawn struct {
	val Value
	n   int
}

type wantRoute = struct {
	Share int                `json:"share"`
	Route map[string]*string `json:"route"`
}

// checkCaseType compares the values one route type took over the draws with
// the wanted routes and their shares.
func checkCaseType(t *testing.T, typ RouteType, want []wantRoute, got map[string]*drawn) {
	t.Helper()
	if len(want) == 0 {
		for s, d := range got {
			t.Errorf("%s: %s in %d draws, want no constraint", typ, s, d.n)
		}
		return
	}
	counts := make([]int, len(want))
	total := 0
	for s, d := range got {
		total += d.n
		i := slices.IndexFunc(want, func(w wantRoute) bool { return routeMatches(d.val, w.Route) })
		if i < 0 {
			t.Errorf("%s: %s in %d draws, not a wanted route", typ, s, d.n)
			continue
		}
		counts[i] += d.n
	}
	if total != caseDraws {
		t.Errorf("%s: constrained in %d of %d draws, want all", typ, total, caseDraws)
	}
	// The version type uses the caller's draw as it is, so evenly spread
	// draws split exactly; the other types draw from a mix of it.
	tol := 0.0
	if typ != TypeVersion {
		tol = 3
	}
	for i, w := range want {
		share := float64(counts[i]) * 100 / caseDraws
		if math.Abs(share-float64(w.Share)) > tol || (w.Share == 0) != (counts[i] == 0) {
			t.Errorf("%s: %s in %.1f%% of draws, want %d%%", typ, routeText(w.Route), share, w.Share)
		}
	}
}

// routeMatches reports whether val carries exactly the wanted value for
// each listed service.
func routeMatches(val Value, route map[string]*string) bool {
	for svc, want := range route {
		if svc == "*" {
			if !val.IsPlain() || want == nil || val.String() != *want {
				return false
			}
			continue
		}
		s, ok := val.For(svc)
		if want == nil {
			if ok {
				return false
			}
			continue
		}
		if !ok || s != *want {
			return false
		}
	}
	return len(route) > 0
}

func routeText(route map[string]*string) string {
	keys := make([]string, 0, len(route))
	for k := range route {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := "(unconstrained)"
		if route[k] != nil {
			v = strconv.Quote(*route[k])
		}
		b.WriteString(k + "=" + v + " ")
	}
	return strings.TrimSpace(b.String())
}

// caseRequest builds the HTTP request the Nepxion test sends: query
// parameters, Cookie header lines and headers.
func caseRequest(t *testing.T, c *nepxionCase) *http.Request {
	t.Helper()
	q := url.Values{}
	for k, v := range c.Request.Parameter {
		q.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodGet, "http://gateway/discovery-guide-service-a/invoke/gateway?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Request.Header {
		req.Header.Set(k, v)
	}
	for _, line := range c.Request.Cookie {
		req.Header.Add("Cookie", line)
	}
	return req
}

// caseValues reads a case's request as a Nepxion hop does: for each name the
// request parameter, then the cookie, then the header, the first non-blank
// one. (The runtime's own lookup is balancer.RequestValues, which rule cannot
// import; the cases use distinct names per source, so the order is all that
// matters here.)
func caseValues(r *http.Request) Values {
	return expr.ValuesFunc(func(name string) (string, bool) {
		if v := r.URL.Query().Get(name); strings.TrimSpace(v) != "" {
			return v, true
		}
		if c, err := r.Cookie(name); err == nil && strings.TrimSpace(c.Value) != "" {
			return c.Value, true
		}
		if v := r.Header.Get(name); strings.TrimSpace(v) != "" {
			return v, true
		}
		return "", false
	})
}
