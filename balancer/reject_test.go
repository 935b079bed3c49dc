package balancer

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// secretMarker stands for whatever a person pasted into KV by mistake.
const secretMarker = "SECRET-7f3a9c-do-not-show"

// TestDebugRejectionHidesDocument publishes documents that fail to parse
// far from a secret they carry: the debug view (JSON and HTML) shows the
// error, its position, an excerpt around it and the document's hash, and
// never the secret.
func TestDebugRejectionHidesDocument(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantLine    int
		wantExcerpt string // part of the error's line
	}{
		{
			name:        "lines away",
			give:        "<rule>\n<!-- " + secretMarker + " -->\n" + strings.Repeat("<strategy/>\n", 30) + "<bogus>\n</rule>\n",
			wantLine:    34,
			wantExcerpt: "34 | </rule>",
		},
		{
			name:        "same line, far left",
			give:        `{"strategy":{"version":"1.0"},"x":"` + secretMarker + strings.Repeat("a", 3000) + `", bad}`,
			wantLine:    1,
			wantExcerpt: `aaa", bad}`,
		},
		{
			name:        "same line, far right",
			give:        `{"strategy":{"version":"1.0"}, bad ` + strings.Repeat("b", 3000) + secretMarker + `}`,
			wantLine:    1,
			wantExcerpt: `, bad bbb`,
		},
		{
			name:        "one huge line",
			give:        "<rule><strategy><version>" + strings.Repeat("x", 40<<10) + secretMarker + "</strategy></rule>",
			wantLine:    1,
			wantExcerpt: "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := discovery.NewStaticRules([]byte(`<rule><strategy><version>1.0</version></strategy></rule>`))
			defer src.Close()
			b := newBalancer(t, staticFleet(1, "1.0"), WithRuleSource(src))
			waitRule(t, b, "the first rule", func(r *rule.Rule) bool { return r != nil })
			if err := src.Set([]byte(tt.give)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for b.rejected.Load() == nil {
				if time.Now().After(deadline) {
					t.Fatal("document never rejected")
				}
				time.Sleep(time.Millisecond)
			}
			rj := b.Debug().Rejected
			sum := sha256.Sum256([]byte(tt.give))
			if rj.SHA256 != hex.EncodeToString(sum[:]) || rj.Size != len(tt.give) {
				t.Errorf("hash %s size %d, want the document's", rj.SHA256, rj.Size)
			}
			if rj.Line != tt.wantLine || !strings.Contains(rj.Excerpt, tt.wantExcerpt) || rj.Error == "" {
				t.Errorf("line %d excerpt\n%s\nerror %q; want line %d, excerpt with %q", rj.Line, rj.Excerpt, rj.Error, tt.wantLine, tt.wantExcerpt)
			}
			if len(rj.Excerpt) > 600 || len(rj.Error) > 500 {
				t.Errorf("excerpt %d bytes, error %d bytes: not short", len(rj.Excerpt), len(rj.Error))
			}
			for _, format := range []string{"json", "html"} {
				body := getDebug(t, b.DebugHandler(), "/?format="+format, nil).Body.String()
				if strings.Contains(body, secretMarker) {
					t.Errorf("%s debug view shows the secret", format)
				}
				if !strings.Contains(body, rj.SHA256) {
					t.Errorf("%s debug view lacks the document's hash", format)
				}
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		line, col int
		want      string
	}{
		{"start", "a\nb\nc\nd\ne", 1, 1, "1 | a\n    ^\n2 | b\n"},
		{"middle", "a\nb\nc\nd\ne", 4, 1, "2 | b\n3 | c\n4 | d\n    ^\n5 | e\n"},
		{"last line", "a\nb\nc", 3, 0, "1 | a\n2 | b\n3 | c\n"},
		{"crlf", "a\r\nb\r\n", 2, 1, "1 | a\n2 | b\n    ^\n3 | \n"},
		{"past the end", "a\nb", 9, 1, ""},
		{"cut left and right", strings.Repeat("x", 100) + "!" + strings.Repeat("y", 100), 1, 101,
			"1 | ..." + strings.Repeat("x", 30) + "!" + strings.Repeat("y", 29) + "...\n" + strings.Repeat(" ", 4+3+30) + "^\n"},
		{"runes kept whole", strings.Repeat("é", 100), 1, 150, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := excerpt([]byte(tt.give), tt.line, tt.col)
			if tt.name == "runes kept whole" {
				if !utf8.ValidString(got) || strings.ContainsRune(got, utf8.RuneError) || !strings.Contains(got, "é") {
					t.Errorf("excerpt %q", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("excerpt:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func FuzzExcerpt(f *testing.F) {
	f.Add([]byte("<rule>\n  <strategy>\n"), 2, 5)
	f.Add([]byte(strings.Repeat("é", 300)), 1, 200)
	f.Add([]byte("\n\n\r\n"), 3, 0)
	f.Fuzz(func(t *testing.T, data []byte, line, col int) {
		if line <= 0 || line > 1<<20 || col < 0 || col > 1<<20 {
			return
		}
		got := excerpt(data, line, col)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		// At most excerptBefore+1+excerptAfter lines, each bounded, and a caret line.
		if limit := (excerptBefore + excerptAfter + 2) * (excerptWidth*2 + 40); len(got) > limit {
			t.Fatalf("excerpt of %d bytes", len(got))
		}
	})
}
