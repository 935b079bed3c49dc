package rule

import (
	"slices"
	"testing"
	"time"
)

func versionsOf(list []Instance) []string {
	var out []string
	for _, in := range list {
		if !slices.Contains(out, in.Version) {
			out = append(out, in.Version)
		}
	}
	slices.Sort(out)
	return out
}

func TestHoldKeepsAnAbsentVersionForD(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := Hold{D: 30 * time.Second}
	both := []Instance{{Version: "1.0", Started: t0}, {Version: "1.1", Started: t0.Add(time.Minute)}}
	if got, held, next := h.Apply("svc", both, t0); !slices.Equal(versionsOf(got), []string{"1.0", "1.1"}) || held != nil || !next.IsZero() {
		t.Fatalf("both listed: %v held %v next %v", versionsOf(got), held, next)
	}
	// 1.0 briefly missing: it stays, with its start, until the hold ends.
	only11 := []Instance{{Version: "1.1", Started: t0.Add(time.Minute)}}
	got, held, next := h.Apply("svc", only11, t0.Add(10*time.Second))
	if !slices.Equal(versionsOf(got), []string{"1.0", "1.1"}) || !slices.Equal(held, []string{"1.0"}) || !next.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("1.0 missing: %v held %v next %v", versionsOf(got), held, next)
	}
	inv, err := orderedOld(got)
	if err != nil || inv != "1.0" {
		t.Fatalf("oldest by time = %q, %v; want 1.0", inv, err)
	}
	// The hold is counted from when it went missing, not from each call.
	if _, held, _ := h.Apply("svc", only11, t0.Add(39*time.Second)); !slices.Equal(held, []string{"1.0"}) {
		t.Fatalf("at 39 s held %v, want [1.0]", held)
	}
	if got, held, next := h.Apply("svc", only11, t0.Add(40*time.Second)); !slices.Equal(versionsOf(got), []string{"1.1"}) || held != nil || !next.IsZero() {
		t.Fatalf("after the hold: %v held %v next %v", versionsOf(got), held, next)
	}
	// A new version joins at once.
	if got, _, _ := h.Apply("svc", append(only11, Instance{Version: "1.2"}), t0.Add(41*time.Second)); !slices.Equal(versionsOf(got), []string{"1.1", "1.2"}) {
		t.Fatalf("1.2 appears: %v", versionsOf(got))
	}
}

// orderedOld returns the version time order makes old, as Orchestrate would.
func orderedOld(list []Instance) (string, error) {
	vs := orderVersions(list, SortTime)
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

func TestHoldOffAndRetain(t *testing.T) {
	t0 := time.Unix(1000, 0)
	off := Hold{D: -1}
	off.Seed("svc", []string{"1.0"}, t0)
	if got, held, _ := off.Apply("svc", nil, t0); got != nil || held != nil {
		t.Fatalf("hold off: %v held %v", got, held)
	}
	h := Hold{D: time.Minute}
	h.Apply("a", []Instance{{Version: "1.0"}}, t0)
	h.Apply("b", []Instance{{Version: "2.0"}}, t0)
	h.Retain([]string{"b"})
	if got, _, _ := h.Apply("a", nil, t0); got != nil {
		t.Fatalf("a forgotten, still held %v", versionsOf(got))
	}
	if got, _, _ := h.Apply("b", nil, t0); !slices.Equal(versionsOf(got), []string{"2.0"}) {
		t.Fatalf("b kept: %v", versionsOf(got))
	}
	h.Reset()
	if got, _, _ := h.Apply("b", nil, t0); got != nil {
		t.Fatalf("after Reset: %v", versionsOf(got))
	}
}

// TestHoldSeedKeepsTheRenderingsOrder: versions seeded from a rendering,
// oldest first, keep that order under time sorting while their starts are
// unknown, around a version whose start is known.
func TestHoldSeedKeepsTheRenderingsOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := Hold{D: time.Minute}
	h.Seed("svc", []string{"base", "gray", "canary"}, t0)
	got, held, _ := h.Apply("svc", []Instance{{Version: "gray", Started: t0}}, t0)
	if !slices.Equal(held, []string{"base", "canary"}) {
		t.Fatalf("held %v, want base and canary", held)
	}
	if vs := orderVersions(got, SortTime); !slices.Equal(vs, []string{"base", "gray", "canary"}) {
		t.Fatalf("time order %v, want the rendering's", vs)
	}
}
