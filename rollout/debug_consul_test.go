package rollout_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rollout"
)

// TestDebugPageShowsRollout: a rollout the rollout package steps on a real
// Consul agent for key K appears on the debug page (JSON and HTML) of a
// balancer following K, through rollout.DebugSection: the step, the share,
// the next action and the figures of the latest check.
func TestDebugPageShowsRollout(t *testing.T) {
	const key = "debug-gateway"
	ctx := t.Context()
	client := consultest.Start(t).Client()
	reg := discovery.NewStatic()
	reg.Set("svc-a",
		discovery.Instance{Address: "10.0.0.1", Port: 80, Version: "1.0"},
		discovery.Instance{Address: "10.0.0.2", Port: 80, Version: "1.1"})
	if _, err := client.KV().Put(&api.KVPair{Key: rollout.SpecKey(key), Value: []byte("service: [svc-a]\ngray:\n  - {weight: [100, 0]}\n")}, nil); err != nil {
		t.Fatal(err)
	}
	store, err := rollout.NewConsulStore(client, key, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range []string{key, rollout.SpecKey(key), rollout.StatePrefix + key} {
			_, _ = client.KV().Delete(k, nil)
		}
	})
	plan := "ruleKey: " + key + "\nservices: [svc-a]\nnew: newest\nsteps: [10, 50, 100]\nhold: 5m\nanalysis: {minRequests: 50, maxErrorRate: 0.01}\n"
	if _, err := rollout.Start(ctx, store, reg, []byte(plan)); err != nil {
		t.Fatal(err)
	}
	// The controller on a clock moved by hand, from now (the page reads
	// the wall clock, with a fraction of a second the page leaves out): step
	// 1, its figures, its check, step 2.
	clock := &manual{now: time.Now().UTC().Truncate(time.Second).Add(123456789 * time.Nanosecond)}
	rec := rollout.NewRecorder()
	ctl, err := rollout.NewController(store, reg, rec, rollout.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	next, err := ctl.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		v := "1.0"
		if i < 100 {
			v = "1.1"
		}
		rec.Record("svc-a", v, clock.now.Add(time.Minute), 20*time.Millisecond, i == 0)
	}
	clock.now = next
	if _, err := ctl.Tick(ctx); err != nil {
		t.Fatal(err)
	}

	other, err := rollout.NewConsulStore(client, "no-such-key", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rollout.DebugSection(other)(ctx); err != nil || v != "no rollout at graylane/rollout/no-such-key" {
		t.Errorf("without a rollout: %v, %v", v, err)
	}

	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: key}, discovery.WithWaitTime(2*time.Second))
	t.Cleanup(func() { rules.Close() })
	b, err := balancer.New(reg, balancer.WithRuleSource(rules), balancer.WithDebugSection("rollout", rollout.DebugSection(store)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for b.Rule() == nil {
		select {
		case <-wctx.Done():
			t.Fatal("the balancer never applied the rule the controller wrote")
		case <-time.After(20 * time.Millisecond):
		}
	}
	srv := httptest.NewServer(b.DebugHandler())
	defer srv.Close()
	get := func(format string) string {
		resp, err := http.Get(srv.URL + "/?format=" + format)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	var st balancer.DebugState
	if err := json.Unmarshal([]byte(get("json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rule == nil || st.Rule.Origin.Key != key || len(st.Sections) != 1 || st.Sections[0].Error != "" {
		t.Fatalf("rule %+v, sections %+v", st.Rule, st.Sections)
	}
	var v rollout.View
	if err := json.Unmarshal(st.Sections[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	wantNext := "check svc-a figures over the last 5m0s at " + next.Add(5*time.Minute).Format("15:04:05 MST") + ", then step to 100%; a failed check rolls back"
	if v.RuleKey != key || v.Phase != rollout.Running || v.Step != 2 || v.Steps != 3 || v.Share != 50 || !v.StepStart.Equal(next.Truncate(time.Second)) ||
		v.Next.Text != wantNext || len(v.Checks) != 1 {
		t.Fatalf("view = %+v\nwant step 2/3 at 50%% since %v, next %q", v, next, wantNext)
	}
	if c := v.Checks[0]; c.Step != 1 || c.Outcome != rollout.Pass || c.New.Requests != 100 || c.New.Errors != 1 || c.Old.Requests != 900 || c.New.P99 != "20ms" {
		t.Errorf("check = %+v", c)
	}
	page := get("html")
	for _, want := range []string{
		`<h2 id="section-rollout">rollout</h2>`, "<dt>phase</dt><dd>running</dd>", "<dt>step</dt><dd>2</dd>",
		"<dt>steps</dt><dd>3</dd>", "<dt>share</dt><dd>50</dd>", wantNext,
		"<thead><tr><th>service</th><th>step</th><th>at</th><th>outcome</th><th>new</th><th>old</th></tr></thead>",
		"<dt>requests</dt><dd>100</dd>\n<dt>errors</dt><dd>1</dd>\n<dt>errorRate</dt><dd>0.01</dd>\n<dt>p99</dt><dd>20ms</dd>",
		"<dt>requests</dt><dd>900</dd>",
		"<dt>stepStart</dt><dd>" + next.Truncate(time.Second).Format(time.RFC3339) + "</dd>",
		"<dt>inconclusive</dt><dd>0</dd>",
		"<dt>exposure</dt><dd>about 50% of requests; rolled back within 5m0s of running at this step while every window has at least 50 requests",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, ".123456789") {
		t.Errorf("the page shows fractions of seconds:\n%s", page)
	}
}
