package rule

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// nepxionDocs reads testdata/nepxion/ORIGIN: every rule document on the
// tips of Nepxion's Discovery and DiscoveryGuide, with where it came from.
func nepxionDocs(t testing.TB) map[string][]string {
	f, err := os.Open(filepath.Join("testdata", "nepxion", "ORIGIN"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 4 {
			t.Fatalf("ORIGIN: bad line %q", line)
		}
		docs[fields[0]] = append(docs[fields[0]], fields[1]+" "+fields[2]+" "+fields[3])
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestNepxionDocuments parses every rule document of Nepxion's own
// repositories, re-encodes it in its notation (Nepxion XML, or Nepxion's
// JSON entities), and checks the encoding is stable and keeps the sections
// graylane does not use.
func TestNepxionDocuments(t *testing.T) {
	docs := nepxionDocs(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "nepxion", "*"))
	var nXML, nJSON int
	for _, path := range files {
		name := filepath.Base(path)
		if name == "ORIGIN" || name == "history" {
			continue
		}
		origins := docs[name]
		if len(origins) == 0 {
			t.Errorf("%s has no origin in ORIGIN", name)
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(data)
			if err != nil {
				t.Fatalf("%v\n(from %s)", err, strings.Join(origins, "; "))
			}
			encode, isJSON := EncodeXML, strings.HasSuffix(name, ".json")
			if isJSON {
				encode = EncodeNepxionJSON
				nJSON++
			} else {
				nXML++
			}
			b1, err := encode(r)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := Parse(b1)
			if err != nil {
				t.Fatalf("re-encoded document does not parse: %v\n%s", err, b1)
			}
			b2, err := encode(r2)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("second encoding differs (%v):\n%s\n---\n%s", err, b1, b2)
			}
			c1, _ := EncodeJSON(r)
			c2, _ := EncodeJSON(r2)
			if !bytes.Equal(c1, c2) {
				t.Errorf("rule changed through the encoding:\n%s\n---\n%s", c1, c2)
			}
			for _, sec := range unusedSections(t, data, isJSON) {
				if !bytes.Contains(b1, []byte(sec)) {
					t.Errorf("section lost:\n%s\nencoded:\n%s", sec, b1)
				}
			}
		})
	}
	// Nepxion's 6.x.x holds three JSON rules and DiscoveryGuide's automation
	// suite 25 XML ones beside Discovery's four.
	if nJSON < 3 || nXML < 29 {
		t.Errorf("%d XML and %d JSON documents, want at least 29 and 3", nXML, nJSON)
	}
}

// unusedSections returns the top-level sections of a document graylane
// does not use, as they must appear in its encoding: XML as written; JSON
// as graylane writes the value.
func unusedSections(t *testing.T, data []byte, isJSON bool) []string {
	var out []string
	if isJSON {
		root, err := readJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range root.keys {
			if nepxionSection(k) == "" {
				var b strings.Builder
				writeJSON(&b, root.kids[i], 1)
				out = append(out, `"`+k+`": `+b.String())
			}
		}
		return out
	}
	_, data = detect(data)
	root, err := readXML(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range root.kids {
		switch sec.name {
		case pathStrategy, pathRelease, pathFailover, pathBlacklist:
		default:
			out = append(out, string(data[sec.start:sec.end]))
		}
	}
	return out
}

func TestNepxionJSON(t *testing.T) {
	src := `{
  "strategyEntity": {"versionValue": "{\"a\":\"1.0\"}", "regionValue": null},
  "strategyReleaseEntity": {
    "strategyConditionBlueGreenEntityList": [
      {"id": "c0", "expression": "#H['x'] == '1'", "versionId": "v1"},
      {"id": "c1", "expression": null, "versionId": "v0"}
    ],
    "strategyConditionGrayEntityList": [
      {"id": "g0", "versionWeightEntity": {"weightMap": {"v0": 90, "v1": "10"}}, "regionWeightEntity": null}
    ],
    "strategyRouteEntityList": [
      {"id": "v0", "type": "VERSION", "value": "1.0"},
      {"id": "v1", "type": "VERSION", "value": "{\"a\":\"1.1\"}"},
      {"id": "v1", "type": "REGION_WEIGHT", "value": "dev=1"}
    ],
    "strategyHeaderEntity": {"headerMap": {"x": "1"}}
  },
  "strategyFailoverEntity": {"environmentFailoverValue": "env1"},
  "strategyBlacklistEntity": {"idList": ["x"]},
  "parameterEntity": {"parameterServiceMap": {}},
  "content": null,
  "customizationEntity": {"customizationMap": {}}
}`
	r := mustParse(t, src)
	if !slices.Equal(r.Ignored, []string{"strategyBlacklistEntity/idList", "parameterEntity", "content", "customizationEntity"}) {
		t.Errorf("Ignored = %q", r.Ignored)
	}
	if v, _ := r.Decide(nil, 0).Version.For("a"); v != "1.1" {
		t.Errorf("version = %q, want 1.1 (the built-in header matches c0)", v)
	}
	if got := r.Release.Gray[0].VersionID; got != "v0=90;v1=10" {
		t.Errorf("gray version-id = %q", got)
	}
	if r.Release.Routes[2].Type != TypeRegionWeight || r.Failover.EnvFailover.String() != "env1" {
		t.Errorf("routes %+v, failover %+v", r.Release.Routes, r.Failover)
	}
	b, err := EncodeNepxionJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type": "REGION_WEIGHT"`, `"v1": 10
`, `"parameterEntity": {
    "parameterServiceMap": {}
  },
  "content": null,
  "customizationEntity": {`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("encoding lacks %q:\n%s", want, b)
		}
	}
	// Graylane's own JSON of the same rule reads back the same, and its
	// kept sections go back into Nepxion's JSON.
	j, _ := EncodeJSON(r)
	if b2, _ := EncodeNepxionJSON(mustParse(t, string(j))); string(b2) != string(b) {
		t.Errorf("Nepxion JSON -> JSON -> Nepxion JSON:\n%s\n---\n%s", b2, b)
	}
}

// TestNepxionJSONRejects holds what Jackson rejects when a Java hop reads
// a RuleEntity (a route type other than the enum names, a value of the
// wrong kind, malformed JSON), and what graylane cannot write in that
// format.
func TestNepxionJSONRejects(t *testing.T) {
	tests := []struct{ give, want string }{
		{`{"strategyReleaseEntity": {"strategyRouteEntityList": [{"id": "a", "type": "version", "value": "1.0"}]}}`, `strategyRouteEntityList[1]/type: unknown type "version" (want VERSION,`},
		{`{"strategyReleaseEntity": {"strategyRouteEntityList": {"id": "a"}}}`, "must be a list, not an object"},
		{`{"strategyEntity": {"versionValue": ["1.0"]}}`, "line 1, column 37: strategyEntity/versionValue: must be a string, not a list"},
		{`{"strategyEntity": {"versionValue": "1.0",}}`, "malformed JSON"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.give))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.give, err, tt.want)
		}
	}
	for _, give := range []string{
		`<rule><strategy-release><conditions type="gray" sticky="#H['u']"/></strategy-release></rule>`,
		gray(`<condition id="g" version-weight-id="r0=1"/>`),
	} {
		if _, err := EncodeNepxionJSON(mustParse(t, give)); !errors.Is(err, ErrUnencodable) {
			t.Errorf("%s: err = %v, want ErrUnencodable", give, err)
		}
	}
}

// TestNepxionJSONDetection checks which JSON documents are read as
// Nepxion's RuleEntity and that graylane's JSON stays graylane's through
// an encoding.
func TestNepxionJSONDetection(t *testing.T) {
	tests := []struct {
		give    string
		nepxion bool
	}{
		{`{"strategyEntity": {}}`, true},
		{`{"registerEntity": {}, "content": null}`, true},
		{`{"strategy": {}, "strategyEntity": 5}`, false},
		{`{"customization": 1, "content": 2}`, false},
		{`{}`, false},
	}
	for _, tt := range tests {
		root, err := readJSON([]byte(tt.give))
		if err != nil {
			t.Fatal(err)
		}
		if got := isNepxionJSON(root); got != tt.nepxion {
			t.Errorf("%s: Nepxion = %v", tt.give, got)
		}
		if tt.nepxion {
			continue
		}
		r := mustParse(t, tt.give)
		j, _ := EncodeJSON(r)
		r2, err := Parse(j)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.give, err, j)
		}
		if j2, _ := EncodeJSON(r2); string(j2) != string(j) {
			t.Errorf("%s: second encoding differs:\n%s\n---\n%s", tt.give, j, j2)
		}
	}
}

// TestNepxionHistory parses every version of a JSON rule in Nepxion
// Discovery's history (testdata/nepxion/history/ORIGIN): fields of older
// versions are kept (customizationEntity) or listed in Rule.Ignored
// (idList), and the encoding is stable. The one version that is not JSON
// (a trailing comma, which Jackson rejects too) is rejected with its
// position.
func TestNepxionHistory(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "nepxion", "history", "*.json"))
	if len(files) < 30 {
		t.Fatalf("%d files, want the 34 versions", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(data)
			if name == "rule-25.json" {
				if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "line 126, column 5: malformed JSON") {
					t.Errorf("err = %v, want the trailing comma at 126:5", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b1, err := EncodeNepxionJSON(r)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := EncodeNepxionJSON(mustParse(t, string(b1)))
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("second encoding differs (%v):\n%s\n---\n%s", err, b1, b2)
			}
			for _, sec := range unusedSections(t, data, true) {
				if !bytes.Contains(b1, []byte(sec)) {
					t.Errorf("section lost:\n%s", sec)
				}
			}
		})
	}
}
