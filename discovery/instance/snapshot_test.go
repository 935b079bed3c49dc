package instance

import (
	"slices"
	"testing"
)

func TestNewSnapshot(t *testing.T) {
	give := []Instance{
		{ID: "c", Address: "10.0.0.3", Port: 80, Version: "1.10"},
		{ID: "b", Address: "10.0.0.2", Port: 80, Version: "1.9"},
		{ID: "a", Address: "::1", Port: 81},
		{ID: "d", Address: "10.0.0.4", Port: 80, Version: "1.9", Service: "other"},
		{ID: "b", Address: "10.0.0.9", Port: 90, Version: "2.0"}, // a duplicate: the first b wins
		{ID: "e", Address: "10.0.0.5", Port: 80, Version: DefaultVersion},
	}
	in := slices.Clone(give)
	s := NewSnapshot("svc", 7, in)

	if !slices.EqualFunc(in, give, func(x, y Instance) bool { return x.Equal(&y) && x.hostPort == "" }) {
		t.Fatalf("NewSnapshot changed its argument: %+v", in)
	}
	if s.Service != "svc" || s.Index != 7 || s.Len() != 5 {
		t.Fatalf("snapshot %q index %d with %d instances, want svc, 7, 5", s.Service, s.Index, s.Len())
	}
	var ids []string
	for i := range s.Instances {
		ids = append(ids, s.Instances[i].ID)
	}
	if want := []string{"a", "e", "b", "d", "c"}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v (by version, oldest first, then by ID)", ids, want)
	}
	if want := []string{DefaultVersion, "1.9", "1.10"}; !slices.Equal(s.Versions, want) {
		t.Errorf("Versions %v, want %v", s.Versions, want)
	}
	if v := s.Version("1.9"); len(v) != 2 || v[0].ID != "b" || v[0].HostPort() != "10.0.0.2:80" || v[1].ID != "d" {
		t.Errorf("Version(1.9) = %+v, want b at 10.0.0.2:80 (the first occurrence), then d", v)
	}
	if v := s.Version(DefaultVersion); len(v) != 2 || v[0].Version != DefaultVersion || v[0].HostPort() != "[::1]:81" {
		t.Errorf("Version(default) = %+v, want a with the default version at [::1]:81 first", v)
	}
	if v := s.Version("2.0"); v != nil {
		t.Errorf("Version(2.0) = %+v, want nil: the duplicate is dropped", v)
	}
	for i := range s.Instances {
		in := &s.Instances[i]
		want := "svc" // filled in where missing
		if in.ID == "d" {
			want = "other"
		}
		if in.Service != want {
			t.Errorf("instance %s of service %q, want %q", in.ID, in.Service, want)
		}
		if in.hostPort == "" {
			t.Errorf("instance %s: HostPort not cached", in.ID)
		}
	}
}

func TestNewSnapshotEmpty(t *testing.T) {
	for _, give := range [][]Instance{nil, {}} {
		s := NewSnapshot("svc", 1, give)
		if s.Len() != 0 || s.Version(DefaultVersion) != nil || s.Service != "svc" {
			t.Fatalf("NewSnapshot(%v) = %+v, want an empty snapshot of svc", give, s)
		}
		if !s.Equal(nil) || !(*Snapshot)(nil).Equal(s) {
			t.Fatal("an empty snapshot differs from nil")
		}
	}
}

func TestHostPort(t *testing.T) {
	tests := []struct {
		give Instance
		want string
	}{
		{give: Instance{Address: "10.0.0.1", Port: 8080}, want: "10.0.0.1:8080"},
		{give: Instance{Address: "fe80::1", Port: 443}, want: "[fe80::1]:443"},
		{give: Instance{Address: "host.example", Port: 0}, want: "host.example:0"},
	}
	for _, tt := range tests {
		if got := tt.give.HostPort(); got != tt.want {
			t.Errorf("%+v.HostPort() = %q, want %q", tt.give, got, tt.want)
		}
		s := NewSnapshot("svc", 1, []Instance{tt.give})
		if got := s.Instances[0].HostPort(); got != tt.want {
			t.Errorf("%+v.HostPort() from a snapshot = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestEffectiveWeight(t *testing.T) {
	for _, tt := range []struct{ give, want int }{{0, 100}, {-3, 100}, {1, 1}, {250, 250}} {
		in := Instance{Weight: tt.give}
		if got := in.EffectiveWeight(); got != tt.want {
			t.Errorf("Weight %d: EffectiveWeight() = %d, want %d", tt.give, got, tt.want)
		}
	}
}
