package balancer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

func TestRequestLookup(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet,
		"http://svc/path?q=query&both=from-query&enc=a%20b%2Bc&plus=a+b&a%2Fb=slash&dup=1&dup=2&empty=&bare&bad=%zz&semi=1;x=2", nil)
	r.Header.Set("Cookie", `c=cookie; both=from-cookie; quoted="v 1"; lone`)
	r.Header.Add("Cookie", "second=line")
	r.Header.Set("Xyz", "header")
	r.Header.Set("Both", "from-header")
	r.Header.Set("N-D-Version", `{"a":"1.0"}`)
	r.Header.Add("Multi", "first")
	r.Header.Add("Multi", "second")
	r.Header["raw_key"] = []string{"raw"} // set without canonicalization
	long := strings.Repeat("x", 100)
	r.Header.Set(long, "long")
	v := RequestValues(r)

	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{give: "q", want: "query", wantOK: true},
		{give: "both", want: "from-query", wantOK: true}, // query beats cookie and header
		{give: "enc", want: "a b+c", wantOK: true},
		{give: "plus", want: "a b", wantOK: true},
		{give: "a/b", want: "slash", wantOK: true},
		{give: "dup", want: "1", wantOK: true},
		{give: "empty", want: "", wantOK: true},
		{give: "bare", want: "", wantOK: true},
		{give: "bad", want: "", wantOK: false}, // a bad escape is skipped, as url.ParseQuery does
		{give: "semi", want: "", wantOK: false},
		{give: "c", want: "cookie", wantOK: true},
		{give: "quoted", want: "v 1", wantOK: true},
		{give: "second", want: "line", wantOK: true},
		{give: "lone", want: "", wantOK: false},
		{give: "C", want: "", wantOK: false}, // cookie names are exact
		{give: "xyz", want: "header", wantOK: true},
		{give: "XYZ", want: "header", wantOK: true},
		{give: "Xyz", want: "header", wantOK: true},
		{give: "n-d-version", want: `{"a":"1.0"}`, wantOK: true},
		{give: "N-d-VERSION", want: `{"a":"1.0"}`, wantOK: true},
		{give: "multi", want: "first", wantOK: true},
		{give: "raw_key", want: "raw", wantOK: true},
		{give: long, want: "long", wantOK: true},
		{give: strings.ToUpper(long), want: "long", wantOK: true},
		{give: "has space", want: "", wantOK: false},
		{give: "missing", want: "", wantOK: false},
		{give: "", want: "", wantOK: false},
	}
	for _, tt := range tests {
		got, ok := v.Lookup(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRequestLookupSparse(t *testing.T) {
	r := &http.Request{} // no URL, no header
	if _, ok := RequestValues(r).Lookup("a"); ok {
		t.Error("empty request found a value")
	}
	r = &http.Request{URL: &url.URL{Path: "/"}, Header: http.Header{"A": {}}}
	if _, ok := RequestValues(r).Lookup("a"); ok {
		t.Error("header with no values found a value")
	}
}

func TestRequestInCondition(t *testing.T) {
	c, err := expr.Compile("#H['xyz'] == '1' and #H['user'] == 'vip' and #H['n-d-env'] == null")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://svc/?user=vip", nil)
	r.Header.Set("xyz", "1")
	if !c.Match(RequestValues(r)) {
		t.Error("Match = false, want true")
	}
	r.AddCookie(&http.Cookie{Name: "xyz", Value: "2"}) // a cookie beats a header
	if c.Match(RequestValues(r)) {
		t.Error("Match = true after a cookie xyz=2, want false")
	}
}

func TestLookupAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	r := httptest.NewRequest(http.MethodGet, "http://svc/?a=1&b=2", nil)
	r.Header.Set("Cookie", "c=3; d=4")
	r.Header.Set("X-User", "u")
	v := RequestValues(r)
	for _, name := range []string{"b", "d", "x-user", "X-User", "missing"} {
		if n := testing.AllocsPerRun(100, func() { v.Lookup(name) }); n != 0 {
			t.Errorf("Lookup(%q) allocates %v times, want 0", name, n)
		}
	}
	c, err := expr.Compile("#H['x-user'] == 'u' and #H['a'] >= 1 and #H['d'] matches '[0-9]'")
	if err != nil {
		t.Fatal(err)
	}
	var vals expr.Values = v
	if n := testing.AllocsPerRun(100, func() { c.Match(vals) }); n != 0 {
		t.Errorf("Match allocates %v times, want 0", n)
	}
}

func TestHeaderValue(t *testing.T) {
	long := strings.Repeat("ab-", 30) // longer than the stack buffer
	h := http.Header{
		"Xyz":                         {"canonical"},
		"xyz":                         {"raw"}, // both forms present: the canonical one wins
		"raw_key":                     {"raw only"},
		"X-Id":                        {"7"},
		"a b":                         {"invalid name"},
		http.CanonicalHeaderKey(long): {"long"},
		strings.ToUpper(long + "x"):   {"long raw"},
	}
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{give: "xyz", want: "canonical", wantOK: true},
		{give: "XYZ", want: "canonical", wantOK: true},
		{give: "Xyz", want: "canonical", wantOK: true},
		{give: "raw_key", want: "raw only", wantOK: true},
		{give: "RAW_KEY", wantOK: false},
		{give: "x-id", want: "7", wantOK: true},
		{give: "X-ID", want: "7", wantOK: true},
		{give: "a b", want: "invalid name", wantOK: true},
		{give: "A B", wantOK: false},
		{give: long, want: "long", wantOK: true},
		{give: strings.ToUpper(long), want: "long", wantOK: true},
		{give: strings.ToUpper(long + "x"), want: "long raw", wantOK: true},
		{give: "missing", wantOK: false},
	}
	for _, tt := range tests {
		got, ok := headerValue(h, tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("headerValue(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestIsTokenByte(t *testing.T) {
	const token = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for c := range 256 {
		if got, want := isTokenByte(byte(c)), strings.IndexByte(token, byte(c)) >= 0; got != want {
			t.Errorf("isTokenByte(%q) = %v, want %v", rune(c), got, want)
		}
	}
}

// FuzzQueryValue checks the query scanner against url.ParseQuery.
func FuzzQueryValue(f *testing.F) {
	for _, s := range [][2]string{
		{"a=1&b=2", "b"}, {"a=1&a=2", "a"}, {"a%20b=c+d", "a b"}, {"x=%zz&x=1", "x"},
		{"a=1;b=2&a=3", "a"}, {"=v", ""}, {"k", "k"}, {"k=&k=1", "k"}, {"a+b=%2B", "a b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, query, name string) {
		m, _ := url.ParseQuery(query)
		want, wantOK := "", len(m[name]) > 0
		if wantOK {
			want = m[name][0]
		}
		got, ok := queryValue(query, name)
		if got != want || ok != wantOK {
			t.Fatalf("queryValue(%q, %q) = %q, %v; url.ParseQuery says %q, %v", query, name, got, ok, want, wantOK)
		}
	})
}

func BenchmarkMatchRequest(b *testing.B) {
	c, err := expr.Compile("#H['xyz'] == '1' and (#H['age'] >= 18 or #H['vip'] != null) and not (#H['region'] == 'eu')")
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://svc/orders?page=2&age=20", nil)
	r.Header.Set("xyz", "1")
	r.Header.Set("Region", "us")
	r.Header.Set("Cookie", "session=abc; theme=dark")
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "application/json")
	v := RequestValues(r)
	b.ReportAllocs()
	for b.Loop() {
		if !c.Match(v) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkRequestLookup(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://svc/orders?page=2&sort=asc", nil)
	r.Header.Set("Cookie", "session=abc; theme=dark")
	r.Header.Set("X-User-Id", "42")
	v := RequestValues(r)
	for _, name := range []string{"sort", "theme", "x-user-id", "missing"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Lookup(name)
			}
		})
	}
}

// TestRequestLookupBlank checks that a blank value falls through to the
// next source, as Nepxion's ExpressionStrategyCondition.createMap reads a
// name (Discovery 6.x.x: parameter, cookie, header, each while the value
// is StringUtils.isBlank).
func TestRequestLookupBlank(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://svc/?a=+&b=%09&c=&d=q", nil)
	r.Header.Set("Cookie", `a=cookie; b=" "; c=; d=cookie`)
	r.Header.Set("A", "header")
	r.Header.Set("B", "header")
	r.Header.Set("C", "\u3000") // ideographic space: blank to Java
	r.Header.Set("D", "header")
	v := RequestValues(r)
	pv, ok := v.(rule.ParamValues)
	if !ok {
		t.Fatal("RequestValues is not a rule.ParamValues")
	}
	tests := []struct {
		give           string
		want, wantP    string
		wantOK, wantPO bool
	}{
		{give: "a", want: "cookie", wantOK: true, wantP: "cookie", wantPO: true}, // blank query
		{give: "b", want: "header", wantOK: true},                                // blank query and cookie
		{give: "c", want: "", wantOK: true},                                      // blank everywhere: present, blank
		{give: "d", want: "q", wantOK: true, wantP: "q", wantPO: true},
		{give: "missing"},
	}
	for _, tt := range tests {
		if got, ok := v.Lookup(tt.give); got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
		if got, ok := pv.LookupParam(tt.give); got != tt.wantP || ok != tt.wantPO {
			t.Errorf("LookupParam(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.wantP, tt.wantPO)
		}
	}
}

// TestRequestValuesBuiltInHeader checks the order of an HTTP request's
// values against a rule's built-in header: parameter, cookie, built-in
// header, incoming header by default (Nepxion's header priority), and
// parameter, cookie, incoming header, built-in header with
// rule.RequestFirst (Nepxion's header.priority=false).
func TestRequestValuesBuiltInHeader(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="two" expression="#H['xyz'] == '2'" version-id="v2"/>
    <condition id="one" expression="#H['xyz'] == '1'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="v2" type="version">2.0</route></routes>
  <header>{"xyz":"1"}</header>
</strategy-release></rule>`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, cookie, header string
		prio                      rule.HeaderPriority
		want                      string
	}{
		{"query beats built-in", "/?xyz=2", "", "", rule.BuiltInFirst, "two"},
		{"cookie beats built-in", "/", "xyz=2", "", rule.BuiltInFirst, "two"},
		{"built-in beats header", "/", "", "2", rule.BuiltInFirst, "one"},
		{"blank query falls to built-in", "/?xyz=+", "", "2", rule.BuiltInFirst, "one"},
		{"request first: header beats built-in", "/", "", "2", rule.RequestFirst, "two"},
		{"request first: blank header falls to built-in", "/?xyz=", "xyz=", " ", rule.RequestFirst, "one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://svc"+tt.url, nil)
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			if tt.header != "" {
				req.Header.Set("Xyz", tt.header)
			}
			if got := r.DecideWith(RequestValues(req), 0, tt.prio).ConditionID; got != tt.want {
				t.Errorf("condition %q, want %q", got, tt.want)
			}
		})
	}
}
