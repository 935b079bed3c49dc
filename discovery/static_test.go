package discovery

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestStaticRegistry(t *testing.T) {
	s := NewStatic()
	defer s.Close()
	s.Set("svc",
		Instance{Address: "10.0.0.1", Port: 80, Version: "1.0"},
		Instance{ID: "b", Service: "ignored", Address: "10.0.0.2", Port: 80, Version: "2.0"},
	)
	w := s.Watch("svc")
	select {
	case <-w.Ready():
	default:
		t.Fatal("static watch not ready at once")
	}
	snap := w.Snapshot()
	if got := snap.Version("1.0"); len(got) != 1 || got[0].ID != "10.0.0.1:80" || got[0].Service != "svc" {
		t.Fatalf("version 1.0 = %+v", got)
	}
	if got := snap.Version("2.0"); len(got) != 1 || got[0].Service != "svc" {
		t.Fatalf("version 2.0 = %+v", got)
	}

	ch, stop := w.Subscribe()
	defer stop()
	if err := s.Add(Instance{ID: "c", Service: "svc", Address: "10.0.0.3", Port: 80}); err != nil {
		t.Fatal(err)
	}
	<-ch
	if got := w.Snapshot().Versions; !slices.Equal(got, []string{DefaultVersion, "1.0", "2.0"}) {
		t.Fatalf("versions = %v", got)
	}
	// Replacing by ID.
	if err := s.Add(Instance{ID: "c", Service: "svc", Address: "10.0.0.3", Port: 80, Version: "2.0"}); err != nil {
		t.Fatal(err)
	}
	<-ch
	if got := len(w.Snapshot().Version("2.0")); got != 2 {
		t.Fatalf("2.0 has %d instances after replacing c, want 2", got)
	}
	if !s.Remove("svc", "c") || s.Remove("svc", "c") || s.Remove("nope", "c") {
		t.Fatal("Remove reported wrongly")
	}
	<-ch
	if got := w.Snapshot().Len(); got != 2 {
		t.Fatalf("%d instances after Remove, want 2", got)
	}
	err := s.Add(Instance{ID: "d", Service: "svc"}, Instance{ID: "e"})
	if !errors.Is(err, ErrNoService) {
		t.Fatalf("Add without service: %v", err)
	}
	if got := w.Snapshot().Len(); got != 2 {
		t.Fatal("a failed Add changed the registry")
	}
	// Identical content publishes nothing.
	s.Set("svc", s.Instances("svc")...)
	select {
	case <-ch:
		t.Fatal("identical Set published")
	default:
	}
	s.Close()
	s.Set("svc")
	if w.Snapshot().Len() != 2 {
		t.Fatal("a closed registry still publishes")
	}
}

func TestStaticConcurrent(t *testing.T) {
	s := NewStatic()
	defer s.Close()
	w := s.Watch("svc")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				in := Instance{ID: string(rune('a' + g)), Service: "svc", Address: "10.0.0.1", Port: 1000 + i}
				_ = s.Add(in)
				_ = w.Snapshot().Version(DefaultVersion)
				s.Remove("svc", in.ID)
			}
		}()
	}
	wg.Wait()
	if got := w.Snapshot().Len(); got != 0 {
		t.Fatalf("%d instances left, want 0", got)
	}
}
