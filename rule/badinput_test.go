package rule

import (
	"errors"
	"strings"
	"testing"
)

// wrapRelease puts XML inside <rule><strategy-release> with two version
// routes, r0 and r1, and a region route, reg.
func wrapRelease(inner string) string {
	return `<rule><strategy-release>` + inner + `<routes><route id="r0" type="version">1.0</route><route id="r1" type="version">1.1</route><route id="reg" type="region">dev</route></routes></strategy-release></rule>`
}

func bg(conds string) string {
	return wrapRelease(`<conditions type="blue-green">` + conds + `</conditions>`)
}
func gray(conds string) string {
	return wrapRelease(`<conditions type="gray">` + conds + `</conditions>`)
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // substring of the error: where and what
		is   error
	}{
		{"broken XML", `<rule><strategy></rule>`, "malformed XML", ErrSyntax},
		{"broken JSON", `{"strategy": {"version": "1.0",}}`, "malformed JSON", ErrSyntax},
		{"truncated JSON", `{"strategy": {"version": "1.0"`, "unexpected end of input", ErrSyntax},
		{"broken YAML", "strategy:\n  version: [1.0\n", "malformed YAML", ErrSyntax},
		{"two YAML documents", "strategy: {}\n---\nstrategy: {}\n", "more than one YAML document", ErrSyntax},
		{"empty document", "  \n", "empty document", ErrSyntax},
		{"content after root", `<rule/><rule/>`, "content after the root element", ErrSyntax},
		{"content after JSON", `{} {}`, "content after the top-level value", ErrSyntax},
		{"duplicate section", `<rule><strategy/><strategy/></rule>`, "duplicate <strategy> section", ErrInvalid},
		{"duplicate strategy child", `<rule><strategy><version>1.0</version><version>1.1</version></strategy></rule>`, "strategy/version: duplicate element", ErrInvalid},
		{"unknown condition type", wrapRelease(`<conditions type="canary"><condition id="c" version-id="r0"/></conditions>`), `conditions[1]: unknown condition type "canary"`, ErrInvalid},
		{"conditions without type", wrapRelease(`<conditions><condition id="c" version-id="r0"/></conditions>`), "conditions[1]: missing type", ErrInvalid},
		{"duplicate conditions type", wrapRelease(`<conditions type="gray"/><conditions type="gray"/>`), "conditions[type=gray]: duplicate conditions element", ErrInvalid},
		{"condition without id", bg(`<condition expression="#H['a'] == '1'" version-id="r0"/>`), "condition[1]: missing id", ErrInvalid},
		{"gray entry without id", gray(`<condition id="g" version-id="r0=1;=;r1=1"/>`), `condition[id=g]/version-id: entry "=" has no route id`, ErrInvalid},
		{"sticky on blue-green", wrapRelease(`<conditions type="blue-green" sticky="#H['u']"/>`), "sticky applies to gray conditions only", ErrInvalid},
		{"bad sticky", wrapRelease(`<conditions type="gray" sticky="#H[u]"/>`), `conditions[type=gray]/sticky: sticky key "#H[u]" must read #H['name']`, ErrInvalid},
		{"route without id", `<rule><strategy-release><routes><route type="version">1.0</route></routes></strategy-release></rule>`, "routes/route[1]: missing id", ErrInvalid},
		{"route without type", `<rule><strategy-release><routes><route id="a">1.0</route></routes></strategy-release></rule>`, "route[id=a]: missing type", ErrInvalid},
		{"unknown route type", `<rule><strategy-release><routes><route id="a" type="zone">1.0</route></routes></strategy-release></rule>`, `route[id=a]: unknown type "zone"`, ErrInvalid},
		{"bad JSON in route", `<rule><strategy-release><routes><route id="a" type="version">{"svc":"1.0",}</route></routes></strategy-release></rule>`, "route[id=a]: invalid JSON at offset 13: expected a quoted service name", ErrInvalid},
		{"non-string in route", `<rule><strategy-release><routes><route id="a" type="version">{"svc":["1.0"]}</route></routes></strategy-release></rule>`, `value of "svc" must be a string`, ErrInvalid},
		{"duplicate service in route", `<rule><strategy-release><routes><route id="a" type="version">{"svc":"1.0","svc":"1.1"}</route></routes></strategy-release></rule>`, `duplicate service "svc"`, ErrInvalid},
		{"empty value in route", `<rule><strategy-release><routes><route id="a" type="version">{"svc":""}</route></routes></strategy-release></rule>`, `service "svc" has an empty value`, ErrInvalid},
		{"bad version-weight", `<rule><strategy><version-weight>{"svc":"1.0=90;="}</version-weight></strategy></rule>`, `strategy/version-weight: service "svc": entry "=" has no route id`, ErrInvalid},
		{"header not an object", `<rule><strategy-release><header>xyz=1</header></strategy-release></rule>`, "strategy-release/header: header must be a JSON object", ErrInvalid},
		{"duplicate header", `<rule><strategy-release><header>{"a":"1","a":"2"}</header></strategy-release></rule>`, `duplicate service "a"`, ErrInvalid},
		{"JSON duplicate key", `{"strategy": {"version": "1.0", "version": "1.1"}}`, `strategy: duplicate key "version"`, ErrInvalid},
		{"JSON wrong kind", `{"strategy-release": {"routes": {"id": "a"}}}`, "strategy-release/routes: must be a list, not an object", ErrInvalid},
		{"YAML conditions not a list", "strategy-release:\n  conditions: gray\n", "strategy-release/conditions: must be a list, not a string", ErrInvalid},
		{"YAML list as id", "strategy-release:\n  routes:\n    - {id: [a], type: version, value: '1.0'}\n", "route[1]/id: must be a string, not a list", ErrInvalid},
		{"spec given to Parse", "service: [a]\n", "document is an orchestration spec", ErrInvalid},
		{"root not an object", "- strategy\n", "rule: must be an object, not a list", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.give))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", r)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q\nwant it to contain %q", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err = %q, want errors.Is %v", err, tt.is)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("err is %T, want *Error", err)
			}
		})
	}
}

func TestParseSpecRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
		is   error
	}{
		{"broken JSON", `{"service": ["a" "b"]}`, "malformed JSON", ErrSyntax},
		{"broken YAML", "service:\n  - a\n - b\n", "malformed YAML", ErrSyntax},
		{"XML", `<rule/>`, "not XML", ErrSyntax},
		{"empty service list", `service: []`, "service: empty service list", ErrInvalid},
		{"no service key", `{"blueGreen": []}`, "service: empty service list", ErrInvalid},
		{"empty service name", `{"service": ["a", " "]}`, "service[2]: empty service name", ErrInvalid},
		{"duplicate service", `{"service": ["a", "b", "a"]}`, `service[3]: duplicate service "a"`, ErrInvalid},
		{"service not a string", `{"service": [{"name": "a"}]}`, "service[1]: must be a string, not an object", ErrInvalid},
		{"unknown key", `{"service": ["a"], "bluegreen": []}`, `unknown key "bluegreen"`, ErrInvalid},
		{"unknown sort", `{"service": ["a"], "sort": "random"}`, `sort: unknown sort "random" (want version or time)`, ErrInvalid},
		{"two greens", `{"service": ["a"], "blueGreen": [{"expression": "#H['x'] == '1'", "route": "green"}, {"expression": "#H['x'] == '2'", "route": "old"}]}`, "blueGreen: needs exactly one green (old) and one blue (new) entry, has 2 green and 0 blue", ErrInvalid},
		{"one blue only", `{"service": ["a"], "blueGreen": [{"expression": "#H['x'] == '1'", "route": "blue"}]}`, "has 0 green and 1 blue", ErrInvalid},
		{"three entries", `{"service": ["a"], "blueGreen": [{"route": "blue"}, {"route": "green"}, {"route": "blue"}]}`, "has 1 green and 2 blue", ErrInvalid},
		{"unknown colour", `{"service": ["a"], "blueGreen": [{"expression": "#H['x'] == '1'", "route": "purple"}]}`, `blueGreen[1]/route: unknown route "purple"`, ErrInvalid},
		{"missing route", `{"service": ["a"], "blueGreen": [{"expression": "#H['x'] == '1'"}]}`, "blueGreen[1]: missing route", ErrInvalid},
		{"blue-green entry without expression", `{"service": ["a"], "blueGreen": [{"expression": "#H['x'] == '1'", "route": "blue"}, {"route": "green"}]}`, "blueGreen[2]: missing expression (a green entry needs one", ErrInvalid},
		{"blue-green entry with blank expression", `{"service": ["a"], "blueGreen": [{"expression": " ", "route": "blue"}, {"expression": "#H['x'] == '1'", "route": "green"}]}`, "blueGreen[1]: missing expression (a blue entry needs one", ErrInvalid},
		{"bad expression", `{"service": ["a"], "gray": [{"expression": "#H['x'] ==", "weight": [1, 1]}]}`, `gray[1]/expression: expression "#H['x'] =="`, ErrInvalid},
		{"three weights", `{"service": ["a"], "gray": [{"weight": [50, 30, 20]}]}`, "gray[1]/weight: must be a list of two weights", ErrInvalid},
		{"weight not a list", "service: [a]\ngray:\n  - weight: 90\n", "gray[1]/weight: must be a list of two weights", ErrInvalid},
		{"negative weight", `{"service": ["a"], "gray": [{"weight": [-10, 110]}]}`, `gray[1]/weight: weight "-10" is not a whole number`, ErrInvalid},
		{"fractional weight", `{"service": ["a"], "gray": [{"weight": [90.5, 9.5]}]}`, `weight "90.5" is not a whole number`, ErrInvalid},
		{"word weight", "service: [a]\ngray:\n  - weight: [ninety, ten]\n", `weight "ninety" is not a whole number`, ErrInvalid},
		{"all-zero weights", `{"service": ["a"], "gray": [{"weight": [0, 0]}]}`, "gray[1]/weight: both weights are 0", ErrInvalid},
		{"missing weight", `{"service": ["a"], "gray": [{"expression": "#H['x'] == '1'"}]}`, "gray[1]: missing weight", ErrInvalid},
		{"two gray defaults", `{"service": ["a"], "gray": [{"weight": [1, 0]}, {"weight": [0, 1]}]}`, "gray[2]: more than one entry without expression", ErrInvalid},
		{"unknown gray key", `{"service": ["a"], "gray": [{"weights": [1, 0]}]}`, `gray[1]: unknown key "weights"`, ErrInvalid},
		{"null header value", "service: [a]\nheader:\n  xyz:\n", "header/xyz: value must not be null", ErrInvalid},
		{"header not a map", `{"service": ["a"], "header": "xyz"}`, "header: must be an object, not a string", ErrInvalid},
		{"bad sticky", `{"service": ["a"], "sticky": "#H[user]"}`, "sticky: sticky key", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tt.give))
			if err == nil {
				t.Fatalf("ParseSpec accepted it: %+v", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q\nwant it to contain %q", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err = %q, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestParseValueRejects(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{`{"a":"1"`, "unexpected end"},
		{`{"a" "1"}`, `expected ':' after "a"`},
		{`{"a":1.}`, "invalid number"},
		{`{"a":"1"} x`, "unexpected content after '}'"},
		{`{a:"1"}`, "expected a quoted service name"},
		{`{"a":"\q"}`, `invalid escape '\q'`},
		{`{"":"1"}`, "empty service name"},
		{`{"a":true}`, `value of "a" must be a string`},
		{"{\"a\":\"x\ny\"}", "control character in string"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := ParseValue(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseValue(%q) err = %v, want %q", tt.give, err, tt.want)
			}
		})
	}
}
