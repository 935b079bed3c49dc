package discovery

import (
	"errors"
	"testing"
	"time"
)

func waitRule(t *testing.T, r *RuleWatch, what string, cond func(*RuleDoc) bool) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() bool { return cond(r.Current()) })
}

func TestConsulRulesPrecedence(t *testing.T) {
	f := newFakeConsul(t)
	keys := NepxionRuleKeys("grp", "svc")
	if keys.Service != "grp-svc" || keys.Group != "grp-grp" {
		t.Fatalf("NepxionRuleKeys = %+v", keys)
	}
	f.putKV("grp-grp", []byte("group rule"))
	f.putKV("grp-svc", []byte("service rule"))
	// A wait time far beyond waitRule's deadline: changes must wake the
	// blocked queries.
	r := NewConsulRules(f.client(t), keys, WithWaitTime(10*time.Minute), WithRateLimit(0, 1))
	defer r.Close()
	ch, stop := r.Subscribe()
	defer stop()
	select {
	case <-r.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("rules not ready")
	}
	if d := r.Current(); string(d.Data) != "service rule" || d.Group || d.Key != "grp-svc" {
		t.Fatalf("first document = %+v, want the service rule (both keys exist)", d)
	}
	<-ch // the first publish

	f.putKV("grp-svc", []byte("service rule v2"))
	waitRule(t, r, "service update", func(d *RuleDoc) bool { return string(d.Data) == "service rule v2" })
	<-ch

	// The group rule is the base the service rule is assembled over
	// (Nepxion's RuleEntityWrapper): its changes are published too.
	f.putKV("grp-grp", []byte("group rule v2"))
	waitRule(t, r, "group update under the service rule", func(d *RuleDoc) bool {
		return string(d.Data) == "service rule v2" && d.Base != nil && string(d.Base.Data) == "group rule v2"
	})

	f.deleteKV("grp-svc")
	waitRule(t, r, "fallback to group", func(d *RuleDoc) bool {
		return d.Group && string(d.Data) == "group rule v2" && d.Base == nil
	})

	// A blank value clears that key's rule, as in Nepxion: it is not a
	// document to reject.
	f.putKV("grp-svc", []byte("service rule v3"))
	waitRule(t, r, "service rule back", func(d *RuleDoc) bool { return string(d.Data) == "service rule v3" })
	f.putKV("grp-svc", []byte(" \n\t"))
	waitRule(t, r, "blank service value: the group rule alone", func(d *RuleDoc) bool {
		return d.Group && string(d.Data) == "group rule v2" && d.Base == nil
	})
	f.putKV("grp-grp", []byte{})
	waitRule(t, r, "no rule", func(d *RuleDoc) bool { return d.Data == nil && d.Key == "" })

	f.deleteKV("grp-grp")
	f.putKV("grp-svc", []byte("service rule v4"))
	waitRule(t, r, "service rule alone", func(d *RuleDoc) bool {
		return string(d.Data) == "service rule v4" && d.Base == nil && !d.Group
	})
}

func TestConsulRulesUnchangedValuePublishesNothing(t *testing.T) {
	f := newFakeConsul(t)
	f.putKV("k", []byte("same"))
	r := NewConsulRules(f.client(t), RuleKeys{Service: "k"}, WithWaitTime(10*time.Minute), WithRateLimit(0, 1))
	defer r.Close()
	<-r.Ready()
	first := r.Current()
	ch, stop := r.Subscribe()
	defer stop()
	f.waitBlocked(t, "/v1/kv/k")
	n := len(f.requestsFor("/v1/kv/k"))
	f.putKV("k", []byte("same"))
	waitFor(t, 30*time.Second, "the rewrite to be read", func() bool { return len(f.requestsFor("/v1/kv/k")) > n })
	select {
	case <-ch:
		t.Fatal("an unchanged value was published")
	default:
	}
	if r.Current() != first {
		t.Fatal("document replaced by an unchanged value")
	}
}

func TestConsulRulesReadyWaitsForBothKeys(t *testing.T) {
	f := newFakeConsul(t)
	f.putKV("g-g", []byte("group"))
	f.setFailing(true)
	r := NewConsulRules(f.client(t), NepxionRuleKeys("g", "s"), WithWaitTime(time.Second), WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	defer r.Close()
	select {
	case <-r.Ready():
		t.Fatal("ready without any answer")
	case <-time.After(100 * time.Millisecond):
	}
	f.setFailing(false)
	<-r.Ready()
	if d := r.Current(); string(d.Data) != "group" || !d.Group {
		t.Fatalf("document = %+v", d)
	}
	f.setFailing(true)
	time.Sleep(100 * time.Millisecond)
	if d := r.Current(); string(d.Data) != "group" {
		t.Fatalf("document lost while Consul fails: %+v", d)
	}
}

func TestStaticRules(t *testing.T) {
	data := []byte("<rule/>")
	r := NewStaticRules(data)
	defer r.Close()
	data[0] = 'X' // the watch keeps its own copy
	select {
	case <-r.Ready():
	default:
		t.Fatal("static rules not ready at once")
	}
	if got := string(r.Current().Data); got != "<rule/>" {
		t.Fatalf("Data = %q", got)
	}
	ch, stop := r.Subscribe()
	defer stop()
	if err := r.Set([]byte("<rule/>")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("same data published")
	default:
	}
	if err := r.Set(nil); err != nil {
		t.Fatal(err)
	}
	<-ch
	if r.Current().Data != nil {
		t.Fatal("Set(nil) should mean no rule")
	}
	cr := NewConsulRules(nil, RuleKeys{Service: "x"})
	defer cr.Close()
	if err := cr.Set(nil); !errors.Is(err, ErrNotStatic) {
		t.Fatalf("Set on a Consul watch: %v, want ErrNotStatic", err)
	}
}

// An agent that restarts without its state starts its indexes again from
// 1, and an empty KV store answers index 1 too: a watch that waited on
// index 1 after the failure would not see the deleted rule for a whole
// wait time. The first read after a failure must not block.
func TestConsulRulesSeeDeletionAfterEmptyRestart(t *testing.T) {
	f := newFakeConsul(t)
	f.putKV("k", []byte("r1"))
	// A wait time far beyond the test's deadline: only a read that does
	// not block can pass.
	r := NewConsulRules(f.client(t), RuleKeys{Service: "k"}, WithWaitTime(10*time.Minute),
		WithBackoff(time.Millisecond, time.Millisecond))
	defer r.Close()
	<-r.Ready()
	waitRule(t, r, "the rule", func(d *RuleDoc) bool { return string(d.Data) == "r1" })
	waitFor(t, 30*time.Second, "a blocking request", func() bool {
		reqs := f.requestsFor("/v1/kv/k")
		return len(reqs) >= 2 && reqs[len(reqs)-1].Index != ""
	})

	f.down()
	waitFor(t, 30*time.Second, "a failed request", func() bool { return len(f.requestsFor("/v1/kv/k")) >= 3 })
	n := len(f.requestsFor("/v1/kv/k"))
	f.upEmpty()
	waitFor(t, 30*time.Second, "the rule deleted by the restart", func() bool { return r.Current().Data == nil })

	reqs := f.requestsFor("/v1/kv/k")
	var reread bool
	for _, q := range reqs[n-1:] {
		reread = reread || q.Index == ""
	}
	if !reread {
		t.Fatalf("no non-blocking read after the failure; requests: %+v", reqs)
	}
	// Blocking resumes after the re-read.
	waitFor(t, 30*time.Second, "a blocking request after the re-read", func() bool {
		reqs := f.requestsFor("/v1/kv/k")
		return reqs[len(reqs)-1].Index == "1"
	})
}
