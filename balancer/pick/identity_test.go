package pick

import (
	"testing"

	"github.com/graylane/graylane/discovery/instance"
)

func TestIdentityOf(t *testing.T) {
	in := instance.Instance{ID: "svc-a-1", Service: "svc-a", Address: "10.0.0.5", Port: 8080,
		Version: "1.1", Region: "dev", Env: "env1", Zone: "z1", Group: "g"}
	got := IdentityOf(&in)
	want := Identity{Service: "svc-a", ID: "svc-a-1", Address: "10.0.0.5:8080", Version: "1.1",
		Region: "dev", Env: "env1", Zone: "z1", Group: "g"}
	if got != want {
		t.Errorf("IdentityOf = %+v, want %+v", got, want)
	}
	if got.IsZero() {
		t.Error("IsZero = true for a named identity")
	}
	var zero Identity
	if !zero.IsZero() {
		t.Error("IsZero = false for the zero identity")
	}
}
