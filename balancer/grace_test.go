package balancer

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRemovalGraceExpiredEntryDoesNotFailPicks removes two 1.0 instances
// two seconds apart: once the first one's grace is over, requests routed
// to 1.0 go to the second, still inside its grace, every time (they used
// to fail whenever the draw fell on the expired one, and the expired entry
// stayed until the next discovery change).
func TestRemovalGraceExpiredEntryDoesNotFailPicks(t *testing.T) {
	clock := newFakeClock()
	reg := staticFleet(2, "1.0", "1.1")
	b := newBalancer(t, reg, withClock(clock.now), WithRemovalGrace(5*time.Second))
	ctx10 := WithRoute(context.Background(), mustRoute(t, "1.0"))
	ctx11 := WithRoute(context.Background(), mustRoute(t, "1.1"))
	pick := func(ctx context.Context) (string, error) {
		t.Helper()
		in, done, err := b.Pick(ctx, "svc-a")
		if err != nil {
			return "", err
		}
		done(nil)
		return in.ID, nil
	}
	if _, err := pick(ctx10); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"svc-a-1.0-0", "svc-a-1.0-1"} {
		if !reg.Remove("svc-a", id) {
			t.Fatalf("%s not in the fleet", id)
		}
		if _, err := pick(ctx11); err != nil { // takes the change now at the latest
			t.Fatal(err)
		}
		clock.advance(2 * time.Second)
	}
	// Now 4 s after the first removal: both linger.
	if got := lingeringIDs(b); len(got) != 2 {
		t.Fatalf("lingering %v, want both 1.0 instances", got)
	}
	clock.advance(2 * time.Second) // 6 s: svc-a-1.0-0's grace is over
	failed := 0
	for range 20 {
		id, err := pick(ctx10)
		switch {
		case errors.Is(err, ErrNoInstance):
			failed++
		case err != nil || id != "svc-a-1.0-1":
			t.Fatalf("picked %q, %v; want svc-a-1.0-1", id, err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of 20 picks routed to 1.0 failed while svc-a-1.0-1 is inside its grace", failed)
	}
	if ps := b.service("svc-a").cur.Load(); ps.gone == nil || len(ps.gone.until) != 1 {
		t.Errorf("the expired entry is still kept: %v", lingeringIDs(b))
	}
	clock.advance(2 * time.Second) // 8 s: both over
	if _, err := pick(ctx10); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("routed to 1.0 after every grace: %v", err)
	}
	if ps := b.service("svc-a").cur.Load(); ps.gone != nil {
		t.Errorf("expired entries kept: %v", ps.gone.until)
	}
}

// TestRemovalGraceCountsFromTheChange removes 1.0 while nobody calls the
// service: a request routed to 1.0 three seconds later, with a one-second
// grace, must fail rather than revive the instance for a full grace (the
// grace used to count from the first pick that saw the change).
func TestRemovalGraceCountsFromTheChange(t *testing.T) {
	clock := newFakeClock()
	reg := staticFleet(1, "1.0", "1.1")
	b := newBalancer(t, reg, withClock(clock.now), WithRemovalGrace(time.Second))
	ctx10 := WithRoute(context.Background(), mustRoute(t, "1.0"))
	in, done, err := b.Pick(ctx10, "svc-a")
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	reg.Set("svc-a", fleet("svc-a", 1, "1.1").Instances...)
	// No pick until the balancer has the change by itself (it follows
	// the watch); waiting for that is not a timing assertion.
	svc := b.service("svc-a")
	deadline := time.Now().Add(10 * time.Second)
	for svc.cur.Load().snap != svc.watch.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatal("the balancer takes discovery's change only at the next pick")
		}
		time.Sleep(time.Millisecond)
	}
	if got := lingeringIDs(b); len(got) != 1 || got[0] != in.ID {
		t.Fatalf("lingering %v, want %s", got, in.ID)
	}
	clock.advance(3 * time.Second)
	if in, _, err := b.Pick(ctx10, "svc-a"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("3 s after it left with a 1 s grace, 1.0 is still picked: %+v %v", in, err)
	}
}

func lingeringIDs(b *Balancer) []string {
	var ids []string
	for _, s := range b.Debug().Services {
		for _, in := range s.Lingering {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// BenchmarkPickLingering measures a pick that no listed instance can take
// and a lingering one does (a request routed to a version just retired).
func BenchmarkPickLingering(b *testing.B) {
	clock := newFakeClock()
	reg := staticFleet(3, "1.0", "1.1")
	bal, err := New(reg, withClock(clock.now), WithRemovalGrace(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	ctx10 := WithRoute(context.Background(), mustRoute(b, "1.0"))
	if _, done, err := bal.Pick(ctx10, "svc-a"); err != nil {
		b.Fatal(err)
	} else {
		done(nil)
	}
	reg.Set("svc-a", fleet("svc-a", 3, "1.1").Instances...)
	b.ReportAllocs()
	for b.Loop() {
		in, done, err := bal.Pick(ctx10, "svc-a")
		if err != nil || in.Version != "1.0" {
			b.Fatal(in, err)
		}
		done(nil)
	}
}
