package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

func TestSubscribeRule(t *testing.T) {
	src := discovery.NewStaticRules(nil)
	defer src.Close()
	b := newBalancer(t, staticFleet(1, "1.0", "1.1"), WithRuleSource(src))
	ch, unsubscribe := b.SubscribeRule()
	defer unsubscribe()
	other, unsubscribeOther := b.SubscribeRule()

	wake := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification for %s", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-ch:
			t.Fatalf("notification for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	set := func(doc string) {
		t.Helper()
		var data []byte
		if doc != "" {
			data = []byte(doc)
		}
		if err := src.Set(data); err != nil {
			t.Fatal(err)
		}
	}
	const v11 = `<rule><strategy><version>1.1</version></strategy></rule>`
	set(v11)
	wake("a rule applied")
	if b.Rule() == nil {
		t.Fatal("notified before the rule is in force")
	}
	// The same rule in another notation: nothing changes.
	set(`{"strategy":{"version":"1.1"}}`)
	quiet("the same rule again")
	set("<rule><strategy>")
	quiet("a rejected document")
	set(mixedSpec)
	wake("an orchestrated spec")
	// A new version re-orchestrates: a new rule.
	if err := staticReg(b).Add(fleet("svc-b", 1, "2.0").Instances...); err != nil {
		t.Fatal(err)
	}
	wake("re-orchestration")
	set("")
	wake("the rule cleared")
	if b.Rule() != nil {
		t.Fatal("notified before the rule is cleared")
	}

	// A subscriber that never reads holds one pending wake-up and blocks
	// nothing; after unsubscribing it gets none. Unsubscribe first: it
	// waits for a wake-up still being sent to the other subscribers (ch
	// may be woken before other in the same round).
	unsubscribeOther()
	unsubscribeOther() // idempotent
	if len(other) != 1 {
		t.Errorf("idle subscriber holds %d wake-ups, want 1", len(other))
	}
	<-other
	set(v11)
	wake("after another subscriber left")
	if len(other) != 0 {
		t.Error("notified after unsubscribing")
	}
}

func staticReg(b *Balancer) *discovery.Static { return b.reg.(*discovery.Static) }

// debugFixture is a balancer over a static fleet with a spec in force, a
// call in flight, an ejected instance and a rejected document.
type debugFixture struct {
	b     *Balancer
	src   *discovery.RuleWatch
	clock *fakeClock
	done  func(error) // ends the call in flight
	inID  string      // the instance the call is in flight on
	ejID  string      // the ejected instance
	bad   string      // the rejected document
}

const badDoc = "<rule>\n  <strategy-release>\n    <conditions type=\"blue-green\"><script>alert(1)</script>"

func newDebugFixture(t *testing.T) *debugFixture {
	t.Helper()
	reg := discovery.NewStatic()
	for _, svc := range []string{"svc-a", "svc-b"} {
		list := fleet(svc, 2, "1.0", "1.1").Instances
		for i := range list {
			list[i].Zone = "z" + list[i].Region
			list[i].Env = "prod"
		}
		reg.Set(svc, list...)
	}
	src := discovery.NewStaticRules([]byte(mixedSpec))
	t.Cleanup(func() { _ = src.Close() })
	clock := newFakeClock()
	b := newBalancer(t, reg, WithRuleSource(src), withClock(clock.now),
		WithEjection(Ejection{Failures: 2, Duration: 10 * time.Second}), WithRemovalGrace(30*time.Second))
	// Mounted at start-up, as a program does: calls count in flight from
	// the first one.
	_ = b.DebugHandler()
	waitRule(t, b, "the orchestrated rule", orchestrated)
	f := &debugFixture{b: b, src: src, clock: clock, bad: badDoc}

	in, done, err := b.Pick(WithRoute(context.Background(), mustRoute(t, "1.1")), "svc-a")
	if err != nil {
		t.Fatal(err)
	}
	f.inID, f.done = in.ID, done
	t.Cleanup(func() { f.done(nil) })
	// Two failures in a row eject an svc-b 1.0 instance.
	ctx10 := WithRoute(context.Background(), mustRoute(t, "1.0"))
	in, done, err = b.Pick(ctx10, "svc-b")
	if err != nil {
		t.Fatal(err)
	}
	f.ejID = in.ID
	done(errors.New("refused"))
	for range 10 {
		in, done, err := b.Pick(ctx10, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		if in.ID == f.ejID {
			done(errors.New("refused"))
			break
		}
		done(nil)
	}
	if err := src.Set([]byte(f.bad)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.rejected.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("bad document never rejected")
		}
		time.Sleep(time.Millisecond)
	}
	return f
}

func getDebug(t *testing.T, h http.Handler, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestDebugJSON(t *testing.T) {
	f := newDebugFixture(t)
	now := f.clock.now()
	rec := getDebug(t, f.b.DebugHandler(), "/debug?format=json", nil)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var st DebugState
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	if !st.Time.Equal(now) || st.Policy != "round-robin" || st.Failover != "strict" || st.RemovalGrace != Duration(30*time.Second) {
		t.Errorf("header fields: time %v policy %q failover %q grace %v", st.Time, st.Policy, st.Failover, st.RemovalGrace)
	}

	// The rule in force, the spec it came from, when and from where.
	r := st.Rule
	if r == nil {
		t.Fatal("no rule in the debug state")
	}
	want, err := rule.EncodeXML(f.b.Rule())
	if err != nil {
		t.Fatal(err)
	}
	if r.XML != string(want) || !strings.Contains(r.XML, `<route id="route-1" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>`) {
		t.Errorf("rule XML:\n%s", r.XML)
	}
	if r.Origin.Source != "static" || r.Origin.Index != 1 || !r.Origin.At.Equal(now) {
		t.Errorf("rule origin %+v, want static, index 1, at %v", r.Origin, now)
	}
	if !strings.Contains(r.Spec, "route: green") || !strings.Contains(r.Spec, "- svc-b") {
		t.Errorf("rule spec:\n%s", r.Spec)
	}
	if !slices.Equal(r.Versions["svc-a"], []string{"1.0", "1.1"}) || !slices.Equal(r.Versions["svc-b"], []string{"1.0", "1.1"}) {
		t.Errorf("orchestrated with %v", r.Versions)
	}
	if st.Spec == nil || !slices.Equal(st.Spec.Services, []string{"svc-a", "svc-b"}) {
		t.Errorf("followed spec %+v", st.Spec)
	}
	if st.Orchestration != nil {
		t.Errorf("orchestration error %+v", st.Orchestration)
	}

	// The rejected document and the parser's reason.
	rj := st.Rejected
	if rj == nil {
		t.Fatal("no rejected document")
	}
	if !strings.Contains(rj.Error, "rule:") || rj.Origin.Index != 2 || !rj.Origin.At.Equal(now) ||
		rj.Line != 3 || rj.Size != len(f.bad) || !strings.Contains(rj.Excerpt, "3 |     <conditions") {
		t.Errorf("rejected %+v", rj)
	}

	// Services, versions, instances and their records.
	if len(st.Services) != 2 || st.Services[0].Name != "svc-a" || st.Services[1].Name != "svc-b" {
		t.Fatalf("services %+v", st.Services)
	}
	var inFlight, ejected int
	for _, s := range st.Services {
		if !s.Picked || !s.Ready || !slices.Equal(s.Versions, []string{"1.0", "1.1"}) || len(s.Instances) != 4 {
			t.Errorf("service %s: picked %v ready %v versions %v, %d instances", s.Name, s.Picked, s.Ready, s.Versions, len(s.Instances))
		}
		for _, in := range s.Instances {
			if in.Address == "" || in.Port != 8080 || in.Weight != 100 || in.Env != "prod" || in.Zone != "z"+in.Region {
				t.Errorf("instance %+v", in)
			}
			if !strings.HasPrefix(in.ID, s.Name+"-"+in.Version+"-") {
				t.Errorf("instance %s listed as version %s of %s", in.ID, in.Version, s.Name)
			}
			switch in.ID {
			case f.inID:
				inFlight++
				if in.InFlight != 1 {
					t.Errorf("%s: %d in flight, want 1", in.ID, in.InFlight)
				}
			case f.ejID:
				ejected++
				if in.EjectedUntil == nil || !in.EjectedUntil.Equal(now.Add(10*time.Second)) {
					t.Errorf("%s: ejected until %v, want %v", in.ID, in.EjectedUntil, now.Add(10*time.Second))
				}
			default:
				if in.InFlight != 0 || in.EjectedUntil != nil {
					t.Errorf("%+v: in flight or ejected", in)
				}
			}
		}
	}
	if inFlight != 1 || ejected != 1 {
		t.Errorf("found the in-flight instance %d times, the ejected one %d times", inFlight, ejected)
	}

	// Once the ejection is over, the page says so.
	f.clock.advance(11 * time.Second)
	st = f.b.Debug()
	for _, s := range st.Services {
		for _, in := range s.Instances {
			if in.EjectedUntil != nil {
				t.Errorf("%s still shown ejected after the ejection ended", in.ID)
			}
		}
	}
}

// TestDebugCountsInFlightFromFirstView checks when the balancer counts
// calls in flight: with LeastInFlight always; otherwise from the first
// Debug (or DebugHandler) on, leaving calls already under way uncounted,
// so that their ends never drive a count below zero.
func TestDebugCountsInFlightFromFirstView(t *testing.T) {
	inFlight := func(b *Balancer, id string) int64 {
		t.Helper()
		for _, s := range b.Debug().Services {
			for _, in := range s.Instances {
				if in.ID == id {
					return in.InFlight
				}
			}
		}
		t.Fatalf("instance %s not on the debug view", id)
		return 0
	}
	pick1 := func(b *Balancer) (string, func(error)) {
		t.Helper()
		in, done, err := b.Pick(context.Background(), "svc-a")
		if err != nil {
			t.Fatal(err)
		}
		return in.ID, done
	}

	b := newBalancer(t, staticFleet(1, "1.0"))
	id, early := pick1(b)
	if n := inFlight(b, id); n != 0 { // the first view: counting starts now
		t.Errorf("a call started before the first view counts %d in flight", n)
	}
	_, late := pick1(b)
	if n := inFlight(b, id); n != 1 {
		t.Errorf("in flight %d after a call started since the first view, want 1", n)
	}
	early(nil)
	if n := inFlight(b, id); n != 1 {
		t.Errorf("in flight %d after the uncounted call ended, want 1", n)
	}
	late(nil)
	if n := inFlight(b, id); n != 0 {
		t.Errorf("in flight %d after every call ended", n)
	}

	lif := newBalancer(t, staticFleet(1, "1.0"), WithPolicy(LeastInFlight))
	id, done := pick1(lif)
	if n := inFlight(lif, id); n != 1 {
		t.Errorf("least-in-flight: in flight %d before the first view, want 1", n)
	}
	done(nil)
}

func TestDebugOrchestrationErrorAndFailures(t *testing.T) {
	src := discovery.NewStaticRules([]byte(`<rule><strategy><version>1.0</version></strategy></rule>`))
	defer src.Close()
	reg := staticFleet(1, "1.0")
	b := newBalancer(t, reg, WithRuleSource(src))
	waitRule(t, b, "the plain rule", func(r *rule.Rule) bool { return r != nil })
	// A spec none of whose services has instances cannot be expanded:
	// the plain rule stays, and the page says why.
	if err := src.Set([]byte(strings.Replace(mixedSpec, "  - svc-a\n  - svc-b\n", "  - svc-c\n", 1))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.orchestration.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("orchestration failure not recorded")
		}
		time.Sleep(time.Millisecond)
	}
	st := b.Debug()
	if st.Orchestration == nil || !strings.Contains(st.Orchestration.Error, "svc-c") {
		t.Errorf("orchestration error %+v", st.Orchestration)
	}
	if st.Rule == nil || st.Rule.Spec != "" || st.Spec == nil {
		t.Errorf("rule %+v, spec %+v: want the plain rule in force and the spec followed", st.Rule, st.Spec)
	}
	// A spec naming one service without instances among others that have
	// them is expanded over those: svc-c stays unconstrained until it
	// appears, and the page lists it as pending.
	if err := src.Set([]byte(strings.Replace(mixedSpec, "  - svc-b\n", "  - svc-b\n  - svc-c\n", 1))); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "the partly expanded rule", func(r *rule.Rule) bool { return r != nil && len(r.Release.Routes) == 2 })
	st = b.Debug()
	if st.Orchestration != nil || st.Rule.Spec == "" || !slices.Equal(st.Rule.Pending, []string{"svc-c"}) {
		t.Errorf("partial expansion: orchestration %+v, spec %q, pending %v", st.Orchestration, st.Rule.Spec, st.Rule.Pending)
	}
	if _, ok := b.Rule().Release.Routes[1].Value.For("svc-c"); ok {
		t.Error("the route constrains svc-c, which has no instances")
	}
	if got := decideVersion(t, b, "2"); got != "1.0" { // svc-b runs 1.0 only: old = new
		t.Errorf("xyz=2 went to svc-b %s, want 1.0", got)
	}
	names := []string{}
	for _, s := range st.Services {
		names = append(names, s.Name)
		if s.Picked {
			t.Errorf("%s shown as picked", s.Name)
		}
	}
	if !slices.Equal(names, []string{"svc-a", "svc-b", "svc-c"}) {
		t.Errorf("services %v, want the spec's", names)
	}
	// svc-c appears: expanded with it, nothing pending.
	if err := reg.Add(fleet("svc-c", 1, "1.0").Instances...); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "the rule with svc-c", func(r *rule.Rule) bool {
		_, ok := r.Release.Routes[1].Value.For("svc-c")
		return ok
	})
	if st := b.Debug(); st.Orchestration != nil || st.Rule.Spec == "" || len(st.Rule.Pending) != 0 {
		t.Errorf("after expansion: orchestration %+v, spec %q, pending %v", st.Orchestration, st.Rule.Spec, st.Rule.Pending)
	}
	// A deleted key: no rule, and the page says so.
	if err := src.Set(nil); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "no rule", func(r *rule.Rule) bool { return r == nil })
	if st := b.Debug(); st.Rule != nil || st.Spec != nil {
		t.Errorf("after delete: rule %+v spec %+v", st.Rule, st.Spec)
	}
	body := getDebug(t, b.DebugHandler(), "/", nil).Body.String()
	if !strings.Contains(body, "No rule: plain load balancing.") {
		t.Errorf("page without rule:\n%s", body)
	}
}

func TestDebugNegotiation(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0"))
	h := b.DebugHandler()
	tests := []struct {
		name       string
		giveTarget string
		giveAccept string
		wantCode   int
		wantType   string
	}{
		{"default", "/", "", 200, "text/html"},
		{"browser", "/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200, "text/html"},
		{"curl", "/", "*/*", 200, "text/html"},
		{"json accept", "/", "application/json", 200, "application/json"},
		{"json preferred", "/", "text/html;q=0.5, application/json", 200, "application/json"},
		{"html preferred", "/", "application/json;q=0.5, text/html", 200, "text/html"},
		{"format json", "/?format=json", "text/html", 200, "application/json"},
		{"format html", "/?format=html", "application/json", 200, "text/html"},
		{"bad format", "/?format=xml", "", 400, "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := getDebug(t, h, tt.giveTarget, map[string]string{"Accept": tt.giveAccept})
			if rec.Code != tt.wantCode || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.wantType) {
				t.Errorf("status %d type %q, want %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), tt.wantCode, tt.wantType, rec.Body)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if body := getDebug(t, h, "/?format=xml", nil).Body.String(); !strings.Contains(body, `unknown format "xml"`) {
		t.Errorf("bad format message %q", body)
	}
}

func TestRemovalGrace(t *testing.T) {
	tests := []struct {
		name      string
		giveGrace time.Duration
		giveAfter time.Duration // clock advance after the removal
		wantOld   bool          // a request routed to 1.0 still gets 1.0
	}{
		{"off", 0, 0, false},
		{"within grace", 5 * time.Second, 4 * time.Second, true},
		{"grace over", 5 * time.Second, 5 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			reg := staticFleet(2, "1.0", "1.1")
			b := newBalancer(t, reg, withClock(clock.now), WithRemovalGrace(tt.giveGrace))
			ctx10 := WithRoute(context.Background(), mustRoute(t, "1.0"))
			ctx11 := WithRoute(context.Background(), mustRoute(t, "1.1"))
			if _, done, err := b.Pick(ctx10, "svc-a"); err != nil {
				t.Fatal(err)
			} else {
				done(nil)
			}
			reg.Set("svc-a", fleet("svc-a", 2, "1.1").Instances...)
			// The balancer has the change by this pick at the latest.
			if _, done, err := b.Pick(ctx11, "svc-a"); err != nil {
				t.Fatal(err)
			} else {
				done(nil)
			}
			clock.advance(tt.giveAfter)
			seen := map[string]bool{}
			for range 4 {
				in, done, err := b.Pick(ctx10, "svc-a")
				if !tt.wantOld {
					if !errors.Is(err, ErrNoInstance) {
						t.Fatalf("routed to removed 1.0: %v %v", in.ID, err)
					}
					continue
				}
				if err != nil || in.Version != "1.0" {
					t.Fatalf("within the grace: %v %v", in, err)
				}
				seen[in.ID] = true
				done(nil)
			}
			if tt.wantOld && len(seen) != 2 {
				t.Errorf("lingering picks used %v, want both 1.0 instances", seen)
			}
			// A route the live instances can take never lands on a
			// lingering one.
			for range 10 {
				in, done, err := b.Pick(ctx11, "svc-a")
				if err != nil || in.Version != "1.1" {
					t.Fatalf("route 1.1: %v %v", in, err)
				}
				done(nil)
			}
			var lingering []string
			for _, s := range b.Debug().Services {
				for _, in := range s.Lingering {
					lingering = append(lingering, in.ID)
				}
			}
			if want := map[bool]int{true: 2, false: 0}[tt.wantOld]; len(lingering) != want {
				t.Errorf("debug shows lingering %v, want %d", lingering, want)
			}
			// Another change keeps what still lingers; an instance back in
			// discovery is live again, not lingering.
			reg.Set("svc-a", append(fleet("svc-a", 2, "1.1").Instances, fleet("svc-a", 1, "1.0").Instances...)...)
			if _, done, err := b.Pick(ctx10, "svc-a"); err != nil {
				t.Fatal(err)
			} else {
				done(nil)
			}
			for _, s := range b.Debug().Services {
				for _, in := range s.Lingering {
					if in.ID == "svc-a-1.0-0" {
						t.Error("an instance back in discovery is still shown lingering")
					}
				}
			}
		})
	}
}

// TestDebugPageInChromium renders the HTML page in headless Chromium
// (Debian's chromium package) and checks what a person sees.
func TestDebugPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed; CI installs it (.ci/run)")
		}
		t.Skip("chromium not installed")
	}
	f := newDebugFixture(t)
	srv := httptest.NewServer(f.b.DebugHandler())
	defer srv.Close()

	dir := t.TempDir()
	shot := filepath.Join(dir, "debug.png")
	if p := os.Getenv("GRAYLANE_DEBUG_SCREENSHOT"); p != "" {
		shot = p // keep the screenshot for a person to look at
	}
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + filepath.Join(dir, "profile")}
		cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	dom := string(run("--dump-dom", srv.URL+"/debug"))
	for _, want := range []string{
		"<title>graylane balancer</title>",
		`<h3 id="service-svc-a">svc-a</h3>`,
		`<h3 id="service-svc-b">svc-b</h3>`,
		`<span class="versions">1.0, 1.1</span>`,
		"<td>svc-a-1.0-0</td><td>10.0.0.0:8080</td><td>1.0</td><td>dev</td><td>zdev</td><td>prod</td><td>100</td>",
		"<td>svc-b-1.1-1</td><td>10.0.1.1:8080</td><td>1.1</td><td>qa</td><td>zqa</td><td>prod</td><td>100</td>",
		`&lt;route id="route-1" type="version"&gt;{"svc-a":"1.1","svc-b":"1.1"}&lt;/route&gt;`,
		"route: green",
		"svc-a: 1.0, 1.1",
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		`<td>` + f.inID + `</td>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	// The rejected document is shown as text, never run.
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the rendered page contains a script element")
	}
	// One instance row is marked ejected, with the time it returns.
	if !strings.Contains(dom, `<tr class="warn"><td>`+f.ejID+`</td>`) || !strings.Contains(dom, "(in 10s)") {
		t.Errorf("ejected instance %s not shown as such", f.ejID)
	}
	// The in-flight call: 1 in flight on its row.
	row := dom[strings.Index(dom, "<td>"+f.inID+"</td>"):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, "<td>1</td><td>0</td><td>-</td>") {
		t.Errorf("in-flight row %s", row)
	}

	run("--screenshot="+shot, "--window-size=1280,2000", srv.URL+"/debug")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot: %v (%v)", fi, err)
	}
}

func ExampleBalancer_Debug() {
	reg := discovery.NewStatic()
	reg.Set("order-service",
		discovery.Instance{ID: "order-1", Address: "10.0.0.1", Port: 8080, Version: "1.0"},
		discovery.Instance{ID: "order-2", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
	)
	r, err := rule.Parse([]byte(`<rule><strategy><version>{"order-service":"1.1"}</version></strategy></rule>`))
	if err != nil {
		panic(err)
	}
	b, err := New(reg, WithRule(r))
	if err != nil {
		panic(err)
	}
	defer b.Close()
	// Mount the debug page on an operators' port at start-up: from then on
	// the balancer counts calls in flight.
	ops := http.NewServeMux()
	ops.Handle("/debug/graylane", b.DebugHandler())

	in, done, err := b.Pick(context.Background(), "order-service")
	if err != nil {
		panic(err)
	}
	defer done(nil)
	fmt.Println("picked", in.ID)

	// The same state is available to code:
	st := b.Debug()
	fmt.Println("rule from:", st.Rule.Origin.Source)
	for _, s := range st.Services {
		fmt.Println(s.Name, s.Versions)
		for _, in := range s.Instances {
			fmt.Printf("  %s %s:%d v%s in flight %d\n", in.ID, in.Address, in.Port, in.Version, in.InFlight)
		}
	}
	// Output:
	// picked order-2
	// rule from: fixed
	// order-service [1.0 1.1]
	//   order-1 10.0.0.1:8080 v1.0 in flight 0
	//   order-2 10.0.0.2:8080 v1.1 in flight 1
}

// TestDebugSectionsIdentitySwitches: WithDebugSection's sections appear on
// each request of the page (JSON and HTML, fields in order, errors shown,
// a nil value left out, a deadline set), never in Debug; the identity and
// the switches turned on are shown.
func TestDebugSectionsIdentitySwitches(t *testing.T) {
	type view struct {
		Phase  string            `json:"phase"`
		Step   int               `json:"step"`
		Next   map[string]string `json:"next"`
		Checks []map[string]any  `json:"checks"`
	}
	calls := 0
	b := newBalancer(t, staticFleet(1, "1.0"),
		WithIdentity(Identity{Service: "gateway", ID: "gw-1", Version: "1.0", Zone: "z1"}),
		WithSwitches(Switches{VersionFailover: true, ZoneAffinity: true}),
		WithDebugSection("rollout", func(ctx context.Context) (any, error) {
			calls++
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("no deadline")
			}
			return view{Phase: "running", Step: 2, Next: map[string]string{"text": "check <svc-a> at 10:05:00"},
				Checks: []map[string]any{{"service": "svc-a", "new": map[string]float64{"requests": 512}}}}, nil
		}),
		WithDebugSection("broken", func(context.Context) (any, error) { return nil, errors.New("agent down") }),
		WithDebugSection("absent", func(context.Context) (any, error) { return nil, nil }),
		WithDebugSection("nil", nil))
	if st := b.Debug(); st.Sections != nil || calls != 0 {
		t.Errorf("Debug read sections: %+v, %d calls", st.Sections, calls)
	}
	h := b.DebugHandler()
	var st DebugState
	if err := json.Unmarshal(getDebug(t, h, "/?format=json", nil).Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Sections) != 2 || st.Sections[0].Name != "rollout" || st.Sections[1].Name != "broken" || st.Sections[1].Error != "agent down" {
		t.Fatalf("sections = %+v", st.Sections)
	}
	var v view
	if err := json.Unmarshal(st.Sections[0].Value, &v); err != nil || v.Step != 2 || v.Next["text"] != "check <svc-a> at 10:05:00" {
		t.Errorf("rollout section = %s (%v)", st.Sections[0].Value, err)
	}
	if st.Identity == nil || *st.Identity != (DebugIdentity{Service: "gateway", ID: "gw-1", Version: "1.0", Zone: "z1"}) ||
		!slices.Equal(st.Switches, []string{"versionFailover", "zoneAffinity"}) {
		t.Errorf("identity %+v, switches %q", st.Identity, st.Switches)
	}
	body := getDebug(t, h, "/", nil).Body.String()
	for _, want := range []string{
		`<h2 id="section-rollout">rollout</h2>`,
		"<dt>phase</dt><dd>running</dd>", "<dt>step</dt><dd>2</dd>",
		"<dt>text</dt><dd>check &lt;svc-a&gt; at 10:05:00</dd>",
		"<thead><tr><th>new</th><th>service</th></tr></thead>", "<tr><td><dl>\n<dt>requests</dt><dd>512</dd>\n</dl></td><td>svc-a</td></tr>",
		`<h2 id="section-broken">broken</h2>`, "Cannot be read: agent down",
		`<dd id="identity">gateway id gw-1 version 1.0 zone z1</dd>`, `<span id="switches">versionFailover, zoneAffinity</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "section-absent") || strings.Index(body, "<dt>phase</dt>") > strings.Index(body, "<dt>step</dt>") {
		t.Errorf("absent section shown, or fields out of order:\n%s", body)
	}
	if calls != 2 {
		t.Errorf("section read %d times for 2 requests", calls)
	}
}

// FuzzDebugSectionFields: whatever a section's value holds, laying it out
// for the page never panics nor fails, and a valid object gives one field
// per key.
func FuzzDebugSectionFields(f *testing.F) {
	for _, s := range []string{`{"phase":"running","step":2,"next":{"text":"check"}}`, `"no rollout"`, `[1,2]`, `{`, `{"a":}`, `null`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := DebugSection{Value: json.RawMessage(s)}.node()
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &m) == nil && m != nil && (n.Kind != "object" || len(n.Fields) < len(m)) {
			t.Errorf("%q: %s of %d fields for %d keys", s, n.Kind, len(n.Fields), len(m))
		}
		if err := debugPage.ExecuteTemplate(io.Discard, "node", n); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	})
}
