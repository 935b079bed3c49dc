package rest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/graylane/graylane/balancer/rest"
)

// FuzzPath feeds arbitrary path templates and parameter values through URL
// building: the call either fails with a *PathError before sending, or sends
// a request to the client's own host whose path starts with the prefix.
func FuzzPath(f *testing.F) {
	for _, s := range []struct{ path, name, value string }{
		{"/users/{id}", "id", "42"},
		{"/users/{id}/orders?x=1", "id", "a/b"},
		{"/{a}{b}", "a", "?#"},
		{"//evil/x", "", ""},
		{"http://evil/", "", ""},
		{"/%zz", "", ""},
		{"/a/{id", "id", "1"},
		{"/a}", "", ""},
		{"/{x}?q={y}", "x", "..%2F"},
		{"../../etc", "", ""},
	} {
		f.Add(s.path, s.name, s.value)
	}
	var got string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.URL.Host + " " + r.URL.EscapedPath()
		return respond(200, "{}"), nil
	})
	c := rest.New("svc", &http.Client{Transport: rt}, rest.WithBaseURL("http://svc/base"))
	f.Fuzz(func(t *testing.T, path, name, value string) {
		var opts []rest.CallOption
		if name != "" {
			opts = append(opts, rest.Param(name, value))
		}
		got = ""
		_, err := rest.Get[rest.Empty](context.Background(), c, path, opts...)
		if err != nil {
			var pe *rest.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("path %q: error %v is not a *PathError", path, err)
			}
			if got != "" {
				t.Fatalf("path %q: request sent despite %v", path, err)
			}
			return
		}
		if !strings.HasPrefix(got, "svc /base") {
			t.Fatalf("path %q: request went to %q", path, got)
		}
	})
}

// FuzzFormUnmarshal feeds arbitrary bodies to the form codec: it decodes
// into url.Values or a tagged struct, or fails with an error; it never
// panics, and what it decodes into url.Values encodes back to the same
// values.
func FuzzFormUnmarshal(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "age=36&tag=x&tag=y", "age=x", "%zz", "beta=true&beta=maybe", "a=%20;b", "age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v url.Values
		if err := rest.Form.Unmarshal([]byte(body), &v); err != nil {
			return
		}
		var back url.Values
		enc, err := rest.Form.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", v, err)
		}
		if err := rest.Form.Unmarshal(enc, &back); err != nil || back.Encode() != v.Encode() {
			t.Fatalf("round trip of %q: %v, %v (%v)", body, v, back, err)
		}
		var s struct {
			Age  int      `form:"age"`
			Tags []string `form:"tag"`
			Beta bool     `form:"beta"`
			Rate float64  `form:"rate"`
			Name string   `form:"name"`
		}
		_ = rest.Form.Unmarshal([]byte(body), &s)
	})
}
