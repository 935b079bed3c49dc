package rest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graylane/graylane/balancer/rest"
)

// nopTransport answers every request from memory, so the benchmarks measure
// the client's own work: URL building, encoding, decoding.
type nopTransport struct{ body string }

func (t nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(t.body)),
		Request:    r,
	}, nil
}

func BenchmarkGet(b *testing.B) {
	c := rest.New("user-service", &http.Client{Transport: nopTransport{`{"id":"42","name":"Ada"}`}})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rest.Get[user](ctx, c, "/users/{id}", rest.Param("id", "42")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPost(b *testing.B) {
	c := rest.New("user-service", &http.Client{Transport: nopTransport{`{"id":"43","name":"Grace"}`}})
	ctx := context.Background()
	in := user{Name: "Grace"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rest.Post[user, user](ctx, c, "/users", in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
