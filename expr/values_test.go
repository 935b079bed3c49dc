package expr

import (
	"strings"
	"testing"
)

func TestMapAndFunc(t *testing.T) {
	m := Map{"a": "1", "e": ""}
	if v, ok := m.Lookup("a"); !ok || v != "1" {
		t.Errorf("Map.Lookup(a) = %q, %v", v, ok)
	}
	if v, ok := m.Lookup("e"); !ok || v != "" {
		t.Errorf("Map.Lookup(e) = %q, %v; want present and empty", v, ok)
	}
	if _, ok := m.Lookup("A"); ok {
		t.Error("Map.Lookup(A) found a value; names are exact")
	}
	if _, ok := Map(nil).Lookup("a"); ok {
		t.Error("nil Map found a value")
	}
	f := ValuesFunc(func(name string) (string, bool) { return strings.ToUpper(name), name != "" })
	if v, ok := f.Lookup("ab"); !ok || v != "AB" {
		t.Errorf("ValuesFunc.Lookup(ab) = %q, %v", v, ok)
	}
}
