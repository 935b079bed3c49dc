package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	orch "github.com/graylane/graylane/internal/orchestrate"
)

// register adds a passing instance of service at version to the agent.
func register(t *testing.T, a *consultest.Agent, service, version string, port int) {
	t.Helper()
	err := a.Client().Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID:      service + "-" + version,
		Name:    service,
		Address: "127.0.0.1",
		Port:    port,
		Meta:    map[string]string{"version": version},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConsulCommands(t *testing.T) {
	a := consultest.Start(t)
	addr := a.HTTPAddr()
	register(t, a, "svc-a", "1.0", 9001)
	register(t, a, "svc-a", "1.1", 9002)
	register(t, a, "svc-b", "1.0", 9003)
	register(t, a, "svc-b", "1.1", 9004)

	t.Run("render", func(t *testing.T) {
		code, out, errOut := call(t, "", "render", "-spec", "testdata/spec.yaml", "-consul", addr)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		want, err := os.ReadFile("testdata/spec-render.xml")
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("rendered:\n%s\nwant:\n%s", out, want)
		}
		code, out, errOut = call(t, "", "render", "testdata/spec.yaml", "-format", "json", "-consul", "http://"+addr)
		if code != exitOK || !strings.Contains(out, `"route-1"`) {
			t.Errorf("json: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("render errors", func(t *testing.T) {
		tests := []struct {
			give  []string
			stdin string
			want  string
		}{
			{[]string{"-spec", "-"}, "service: [svc-a, svc-zzz]\n",
				`graylane render: <stdin>: rule: service[2]: service "svc-zzz" has no live instances`},
			{[]string{"-spec", "testdata/rule.xml"}, "",
				"testdata/rule.xml holds a full rule, not a spec"},
			{[]string{"-spec", "testdata/bad-spec.yaml"}, "",
				"testdata/bad-spec.yaml:5:13: gray[1]/weight"},
		}
		for _, tt := range tests {
			code, out, errOut := call(t, tt.stdin, append([]string{"render", "-consul", addr}, tt.give...)...)
			if code != exitFailed || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("%v: exit %d\nstdout %s\nstderr %s\nwant %q", tt.give, code, out, errOut, tt.want)
			}
		}
	})

	t.Run("publish", func(t *testing.T) {
		key := "graylane/test-rule"
		code, out, errOut := call(t, "", "publish", "-key", key, "-consul", addr, "testdata/rule.xml")
		if code != exitOK || !strings.Contains(out, "published testdata/rule.xml (rule, ") || errOut != "" {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		want, _ := os.ReadFile("testdata/rule.xml")
		pair, _, err := a.Client().KV().Get(key, nil)
		if err != nil || pair == nil || string(pair.Value) != string(want) {
			t.Fatalf("KV holds %v, %v", pair, err)
		}

		// A valid rule routing to a version nothing runs is published
		// with a warning.
		code, _, errOut = call(t, `<rule><strategy><version>{"svc-a":"1.0","svc-b":"2.0"}</version></strategy></rule>`,
			"publish", "-key", key+"-3", "-consul", addr, "-")
		if code != exitOK || !strings.Contains(errOut, "warning: <stdin>: no live instance of svc-b runs 2.0, which the rule routes to (live: 1.0, 1.1)") ||
			strings.Contains(errOut, "svc-a") {
			t.Errorf("rule routing to 2.0: exit %d\n%s", code, errOut)
		}

		// Invalid documents are refused and the key keeps its value.
		code, _, errOut = call(t, "", "publish", "testdata/bad-expression.xml", "-key", key, "-consul", addr)
		if code != exitFailed || !strings.Contains(errOut, "testdata/bad-expression.xml:8:13:") ||
			!strings.Contains(errOut, "is invalid: not published") {
			t.Errorf("bad: exit %d\n%s", code, errOut)
		}
		if p, _, _ := a.Client().KV().Get(key, nil); string(p.Value) != string(want) {
			t.Errorf("invalid document overwrote the key: %s", p.Value)
		}

		// Check-and-set: a stale index is refused, the current one accepted;
		// for a spec, the index of its own key.
		specKey := "graylane/spec/" + key
		code, _, errOut = call(t, "", "publish", "-key", key, "-cas", "1", "-consul", addr, "testdata/spec.yaml")
		if code != exitFailed || !strings.Contains(errOut, `key "`+specKey+`" changed since index 1: not published`) {
			t.Errorf("stale cas: exit %d\n%s", code, errOut)
		}
		code, out, errOut = call(t, "", "publish", "-key", key, "-cas", "0", "-consul", addr, "testdata/spec.yaml")
		if code != exitOK || !strings.Contains(out, "published testdata/spec.yaml (spec, ") ||
			!strings.Contains(out, "to "+specKey+" at ") || !strings.Contains(out, "rendered it (rule, ") {
			t.Errorf("cas 0: exit %d\n%s%s", code, out, errOut)
		}
		// The spec went to its key, the rendering (what Java hops read) to
		// the rule key, flagged as a rendering.
		spec, _ := os.ReadFile("testdata/spec.yaml")
		rendered, _ := os.ReadFile("testdata/spec-render.xml")
		if p, _, err := a.Client().KV().Get(specKey, nil); err != nil || p == nil || string(p.Value) != string(spec) {
			t.Errorf("spec key holds %v, %v", p, err)
		}
		if p, _, err := a.Client().KV().Get(key, nil); err != nil || p == nil || string(p.Value) != string(rendered) || p.Flags != orch.RenderedFlags {
			t.Errorf("rule key holds %v, %v", p, err)
		}

		// A rule published by hand over a rendered spec: said so.
		code, _, errOut = call(t, "", "publish", "-key", key, "-consul", addr, "testdata/rule.xml")
		if code != exitOK || !strings.Contains(errOut, "warning: a spec is published at "+specKey) {
			t.Errorf("rule over spec: exit %d\n%s", code, errOut)
		}

		// -local puts the spec itself to the key.
		code, out, errOut = call(t, "", "publish", "-key", key+"-local", "-local", "-consul", addr, "testdata/spec.yaml")
		if p, _, _ := a.Client().KV().Get(key+"-local", nil); code != exitOK || !strings.Contains(out, "(spec, unrendered, ") || p == nil || string(p.Value) != string(spec) {
			t.Errorf("local: exit %d, key %v\n%s%s", code, p, out, errOut)
		}

		// A spec of which one service has no instance yet is rendered over
		// the others; one of which no service has any is published alone.
		code, _, errOut = call(t, "service: [svc-a, svc-new]\n", "publish", "-key", key+"-2", "-consul", addr, "-")
		if code != exitOK || !strings.Contains(errOut, "warning: <stdin>: no live instances of [svc-new]: the rule leaves them unconstrained") {
			t.Errorf("spec with a service without instances: exit %d\n%s", code, errOut)
		}
		code, out, errOut = call(t, "service: [svc-new]\n", "publish", "-key", key+"-4", "-consul", addr, "-")
		if code != exitOK || !strings.Contains(errOut, `warning: <stdin>: rule: service[1]: service "svc-new" has no live instances; graylane orchestrate renders it`) ||
			strings.Contains(out, "rendered it") {
			t.Errorf("spec without instances: exit %d\n%s%s", code, out, errOut)
		}
		if p, _, _ := a.Client().KV().Get(key+"-4", nil); p != nil {
			t.Errorf("rule key written without a rendering: %s", p.Value)
		}
	})

	t.Run("explain key", func(t *testing.T) {
		// The key holds a spec (published -local): explain orchestrates it
		// live.
		code, out, errOut := call(t, "", "explain", "-key", "graylane/test-rule-local", "-H", "xyz=2", "-consul", addr)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, w := range []string{
			"rule: key graylane/test-rule-local (spec, orchestrated against the live instances)",
			`blue-green condition "condition-1" -> route-1`,
			"svc-a version 1.1",
		} {
			if !strings.Contains(squeeze(out), w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
		code, _, errOut = call(t, "", "explain", "-key", "graylane/none", "-consul", addr)
		if code != exitFailed || !strings.Contains(errOut, `key "graylane/none" not found`) {
			t.Errorf("missing key: exit %d: %s", code, errOut)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		code, _, errOut := call(t, "", "render", "-spec", "testdata/spec.yaml", "-consul", "127.0.0.1:1", "-timeout", "3s")
		if code != exitFailed || !strings.Contains(errOut, "consul at http://127.0.0.1:1") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

// The client's transport gives up on an agent that never answers, but
// only after the longest blocking query the commands make could have
// answered.
func TestClientResponseTimeout(t *testing.T) {
	cf := &consulFlags{addr: "http://127.0.0.1:8500"}
	cfg := cf.config()
	got := cfg.Transport.ResponseHeaderTimeout
	if got <= 0 {
		t.Fatalf("ResponseHeaderTimeout %v: a frozen agent hangs the commands", got)
	}
	for _, wait := range []time.Duration{discovery.DefaultWaitTime, 10 * time.Minute} { // the watches'; Consul's cap
		if longest := wait + wait/16; got <= longest {
			t.Errorf("ResponseHeaderTimeout %v, not above a blocking query of %v (%v with jitter)", got, wait, longest)
		}
	}
	if cfg.Address != "127.0.0.1:8500" || cfg.Scheme != "http" {
		t.Errorf("address %s://%s", cfg.Scheme, cfg.Address)
	}
}
