package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call runs the program with args and stdin, returning its exit status and
// output.
func call(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runEnv(&env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		give []string
		want int
		text string
	}{
		{nil, exitUsage, "Usage: graylane <command>"},
		{[]string{"help"}, exitOK, "validate"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"validate"}, exitUsage, "no file given"},
		{[]string{"validate", "-h"}, exitOK, "Usage: graylane validate"},
		{[]string{"validate", "-nope", "x"}, exitUsage, "flag provided but not defined: -nope"},
		{[]string{"render"}, exitUsage, "want one spec file"},
		{[]string{"render", "-spec", "a", "b"}, exitUsage, "want one spec file"},
		{[]string{"render", "-spec", "testdata/spec.yaml", "-format", "toml"}, exitUsage, `unknown format "toml"`},
		{[]string{"publish", "testdata/rule.xml"}, exitUsage, "want -key KEY and one file"},
		{[]string{"publish", "-key", "k"}, exitUsage, "want -key KEY and one file"},
		{[]string{"explain"}, exitUsage, "want exactly one of -rule FILE and -key KEY"},
		{[]string{"explain", "-rule", "a", "-key", "b"}, exitUsage, "want exactly one of"},
		{[]string{"explain", "-rule", "testdata/rule.xml", "-H", "novalue"}, exitUsage, `"novalue" is not name=value`},
		{[]string{"explain", "-rule", "testdata/rule.xml", "-H", "=x"}, exitUsage, "is not name=value"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			code, out, errOut := call(t, "", tt.give...)
			if code != tt.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.want, out, errOut)
			}
			if !strings.Contains(out+errOut, tt.text) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.text, out, errOut)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		give     string
		want     int
		wantOut  string
		wantErrs []string
	}{
		{"testdata/rule.xml", exitOK, "testdata/rule.xml: valid rule: strategy version; 2 blue-green conditions; 2 gray conditions; 2 routes", nil},
		{"testdata/spec.yaml", exitOK, "testdata/spec.yaml: valid spec: services svc-a, svc-b; 2 blue-green entries; 2 gray entries; sort version", nil},
		{"testdata/header.xml", exitOK, "built-in header", nil},
		// Nepxion loads a rule without compiling its expressions, so a Go
		// hop loads it too, with the condition never true; validate warns.
		{"testdata/bad-expression.xml", exitOK, "valid rule", []string{
			"testdata/bad-expression.xml:8:13: warning: blue-green condition \"condition-0\": expression never holds on a graylane hop (nor on a Java hop: its evaluation throws there): ",
			"column 16: unexpected end of expression",
			"\t#H['xyz'] == (1\n\t               ^\n",
		}},
		{"testdata/bad.json", exitFailed, "", []string{"testdata/bad.json:4:3: malformed JSON"}},
		{"testdata/bad-spec.yaml", exitFailed, "", []string{"testdata/bad-spec.yaml:5:13: gray[1]/weight: must be a list of two weights [old, new]"}},
		// Nepxion skips elements it does not know, so a Go hop loads the rule
		// too; validate names what it skipped.
		{"testdata/unknown-element.xml", exitOK, "testdata/unknown-element.xml: valid rule: ignored sections strategy/versoin", nil},
		{"testdata/missing.xml", exitFailed, "", []string{"graylane validate: open testdata/missing.xml: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			code, out, errOut := call(t, "", "validate", tt.give)
			if code != tt.want {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.want, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out, tt.wantOut)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestValidateSeveralAndStdin(t *testing.T) {
	code, out, errOut := call(t, "", "validate", "testdata/rule.xml", "testdata/bad.json", "testdata/spec.yaml")
	if code != exitFailed {
		t.Errorf("exit %d, want 1 when one of several files is bad", code)
	}
	if strings.Count(out, ": valid ") != 2 || !strings.Contains(errOut, "testdata/bad.json:4:3") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}

	code, out, _ = call(t, "", "validate", "-q", "testdata/rule.xml")
	if code != exitOK || out != "" {
		t.Errorf("-q: exit %d, stdout %q", code, out)
	}
	// Flags after the file work too.
	code, out, _ = call(t, "", "validate", "testdata/rule.xml", "-q")
	if code != exitOK || out != "" {
		t.Errorf("trailing -q: exit %d, stdout %q", code, out)
	}

	code, out, errOut = call(t, "service: [a]\nsort: size\n", "validate", "-")
	if code != exitFailed || !strings.HasPrefix(errOut, "<stdin>:2:") || !strings.Contains(errOut, "sort") {
		t.Errorf("stdin: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		give []string
		want []string
	}{
		{[]string{"-rule", "testdata/rule.xml"}, []string{
			"request:  (no values)",
			`version            gray condition "condition-1" -> route-0    {"svc-a":"1.0","svc-b":"1.0"}`,
			"region             no constraint",
			"  svc-a  version 1.0\n",
		}},
		{[]string{"-rule", "testdata/rule.xml", "-H", "xyz=2"}, []string{
			"request:  xyz=2",
			`blue-green condition "condition-1" -> route-1    {"svc-a":"1.1","svc-b":"1.1"}`,
			"  svc-b  version 1.1\n",
		}},
		{[]string{"-rule", "testdata/rule.xml", "-H", "xyz: 3"}, []string{
			`gray condition "condition-0" -> route-0  90.0%  {"svc-a":"1.0","svc-b":"1.0"}`,
			`gray condition "condition-0" -> route-1  10.0%  {"svc-a":"1.1","svc-b":"1.1"}`,
			"  svc-a  version 1.0 (90.0%), 1.1 (10.0%)\n",
		}},
		// The built-in header xyz=1 pins every request to the old route...
		{[]string{"-rule", "testdata/header.xml", "-H", "xyz=2"}, []string{
			"built-in header: xyz=1 (replaces the request's values of the same name)",
			`blue-green condition "pin" -> old`,
			"address blacklist",
			"10.0.0.9",
		}},
		// ...unless the request's values come first.
		{[]string{"-rule", "testdata/header.xml", "-H", "xyz=2", "-request-first"}, []string{
			"(fills in names the request lacks)",
			`blue-green condition "new" -> new`,
		}},
		{[]string{"-rule", "testdata/weights.yaml", "-service", "svc-c,svc-d"}, []string{
			"version            no constraint",
			`version-weight     from the rule`,
			"  svc-c  any instance\n",
			"  svc-d  any instance\n",
			"  svc-b  region qa; version-weight 1.0=70;1.1=30\n",
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			code, out, errOut := call(t, "", append([]string{"explain"}, tt.give...)...)
			if code != exitOK {
				t.Fatalf("exit %d\nstderr: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(squeeze(out), squeeze(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	code, _, errOut := call(t, "", "explain", "-rule", "testdata/bad.json")
	if code != exitFailed || !strings.Contains(errOut, "testdata/bad.json:4:3") {
		t.Errorf("bad rule: exit %d, stderr %s", code, errOut)
	}
}

// squeeze collapses runs of spaces, so tests do not depend on column widths.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// TestValidateJavaDiffers checks the warnings about where a Nepxion (Java)
// hop reads a rule differently: each at its place, exit 0, and errors
// with -strict.
func TestValidateJavaDiffers(t *testing.T) {
	const file = "testdata/java-differs.xml"
	want := []string{
		file + ":5:13: warning: routes are listed before the blue-green conditions",
		file + ":7:13: warning: route \"split\": weights split requests per version",
		file + ":10:13: warning: blue-green condition \"dq\": expression column 1: Nepxion's name extraction reads only #H['name']",
		file + ":11:13: warning: blue-green condition \"spaced\": expression column 1: Nepxion's name extraction reads only #H['name']",
		file + ":12:13: warning: blue-green condition \"greedy\": expression column 15: Nepxion's name extraction does not see #H['b']",
		file + ":13:13: warning: blue-green condition \"number\": expression column 9: compares a request value (a string) with the number 2: never equal in Java, so always false",
		file + ":14:13: warning: blue-green condition \"regex\": expression column 17: pattern \"x.y\" has Java's meaning",
		file + ":17:13: warning: gray condition \"g\": version-weight-id is ignored on gray conditions",
		file + ":20:5: warning: ignored by graylane (a Java hop may use it): customization",
	}
	code, out, errOut := call(t, "", "validate", file)
	if code != exitOK || !strings.Contains(out, file+": valid rule") {
		t.Errorf("exit %d, stdout %q; want 0 and a valid rule", code, out)
	}
	checkWarnings(t, errOut, want)

	code, out, errOut = call(t, "", "validate", "-strict", file)
	if code != exitFailed || out != "" || strings.Count(errOut, ": error: ") != len(want) {
		t.Errorf("-strict: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	// A rule where Java and Go agree has no warnings, strict or not.
	code, _, errOut = call(t, "", "validate", "-strict", "testdata/rule.xml")
	if code != exitOK || errOut != "" {
		t.Errorf("-strict on a portable rule: exit %d, stderr %q", code, errOut)
	}
}
