package balancer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// BenchmarkPick measures Pick with a route in the context over 3 versions
// of n instances each. Picks must be O(1): the time may not grow with n.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 100, 10_000} {
		reg := discovery.NewStatic()
		reg.Set("svc-b", fleet("svc-b", n, "1.0", "1.1", "1.2").Instances...)
		bal, err := New(reg)
		if err != nil {
			b.Fatal(err)
		}
		ctx := WithRoute(context.Background(), mustRoute(b, `{"svc-a":"1.1","svc-b":"1.1"}`))
		if _, done, err := bal.Pick(ctx, "svc-b"); err != nil {
			b.Fatal(err)
		} else {
			done(nil)
		}
		name := "3x" + strconv.Itoa(n)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in, done, err := bal.Pick(ctx, "svc-b")
				if err != nil || in.Version != "1.1" {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := bal.Pick(ctx, "svc-b")
					if err != nil {
						b.Fatal(err)
					}
					done(nil)
				}
			})
		})
		_ = bal.Close()
	}
}

// BenchmarkPickPolicies compares the policies on 3x100 instances.
func BenchmarkPickPolicies(b *testing.B) {
	reg := discovery.NewStatic()
	reg.Set("svc-b", fleet("svc-b", 100, "1.0", "1.1", "1.2").Instances...)
	for _, p := range []Policy{RoundRobin, LeastInFlight, WeightedRandom} {
		bal, err := New(reg, WithPolicy(p))
		if err != nil {
			b.Fatal(err)
		}
		ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersionWeight, rule.PlainValue("1.0=90;1.1=10")))
		b.Run(p.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := bal.Pick(ctx, "svc-b")
					if err != nil {
						b.Fatal(err)
					}
					done(nil)
				}
			})
		})
		_ = bal.Close()
	}
}

// BenchmarkSelector measures the shared selector alone (what a gRPC picker
// calls), constraint already derived.
func BenchmarkSelector(b *testing.B) {
	s := NewSelector("svc-b", fleet("svc-b", 100, "1.0", "1.1", "1.2").Instances, SelectorConfig{Tracker: NewTracker(Ejection{})})
	r := mustRoute(b, `{"svc-a":"1.1","svc-b":"1.1"}`)
	b.ReportAllocs()
	var draw uint64
	for b.Loop() {
		draw++
		i, err := s.Pick(&r, draw)
		if err != nil {
			b.Fatal(err)
		}
		s.Start(i)(nil)
	}
}

// entryBalancer returns a balancer holding the orchestration guide's mixed rule,
// orchestrated for svc-a and svc-b with 1.0 and 1.1.
func entryBalancer(b *testing.B) *Balancer {
	reg := discovery.NewStatic()
	reg.Set("svc-a", fleet("svc-a", 2, "1.0", "1.1").Instances...)
	reg.Set("svc-b", fleet("svc-b", 2, "1.0", "1.1").Instances...)
	_, spec, err := rule.ParseDocument([]byte(mixedSpec))
	if err != nil {
		b.Fatal(err)
	}
	inv := rule.Inventory{}
	for _, svc := range []string{"svc-a", "svc-b"} {
		for _, in := range reg.Instances(svc) {
			inv[svc] = append(inv[svc], rule.Instance{Version: in.Version})
		}
	}
	r, err := rule.Orchestrate(spec, inv)
	if err != nil {
		b.Fatal(err)
	}
	bal, err := New(reg, WithRule(r), WithEntry(true))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bal.Close() })
	return bal
}

// BenchmarkEntry measures a decision at the edge with the guide's mixed rule
// (the gray condition xyz=3, so a weighted draw) followed by a pick.
func BenchmarkEntry(b *testing.B) {
	bal := entryBalancer(b)
	values := expr.Map{"xyz": "3"}
	b.Run("Decide+Pick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := bal.Decide(context.Background(), values)
			_, done, err := bal.Pick(ctx, "svc-a")
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
	b.Run("Decide+Pick/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx := bal.Decide(context.Background(), values)
				_, done, err := bal.Pick(ctx, "svc-a")
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
	})
	// The same through the middleware's request adapter.
	req := httptest.NewRequest(http.MethodGet, "/?q=1", nil)
	req.Header.Set("xyz", "3")
	b.Run("Middleware+Pick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := bal.inbound(req)
			_, done, err := bal.Pick(r.Context(), "svc-a")
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
}

// BenchmarkTransport sends GETs to one loopback server through a plain
// http.Transport and through the balancer's transport (retries on, one
// instance registered), alternating in one loop so both see the same
// machine state. It reports each side's ns per request and the throughput
// ratio ours/plain (1.0 = no cost).
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	be := backendInstance(b, "svc", srv)
	reg := discovery.NewStatic()
	reg.Set("svc", be)
	bal, err := New(reg)
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	base := func() *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		return t
	}
	plain := &http.Client{Transport: base()}
	oursT := bal.Transport(base())
	ours := &http.Client{Transport: oursT}
	defer plain.CloseIdleConnections()
	defer oursT.base.(*http.Transport).CloseIdleConnections()
	ctx := WithRoute(context.Background(), mustRoute(b, `{"svc":"1.0"}`))
	do := func(c *http.Client, url string, h http.Header) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, vs := range h {
			req.Header[k] = vs
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(plain, srv.URL+"/x", nil)
		}
	})
	b.Run("graylane", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(ours, "http://svc/x", nil)
		}
	})
	// ratio times the three kinds of request in one loop, rotating which
	// goes first (a request that follows another runs on a warmer path).
	// "plain" is a plain transport; "headers" is a plain transport sending
	// the route header that graylane sends, which is what carrying the route
	// costs on the wire and at the server whoever sends it; "graylane" is
	// ours. throughput-ratio compares graylane with plain, and
	// same-headers-ratio with headers (the transport's own cost). Each
	// figure is the median request, not the mean: on a busy machine a
	// request that was descheduled is an outlier that would otherwise
	// decide the ratio by itself.
	b.Run("ratio", func(b *testing.B) {
		route := http.Header{"N-D-Version": {`{"svc":"1.0"}`}}
		var t [3][]time.Duration
		send := [3]func(){
			func() { do(plain, srv.URL+"/x", nil) },
			func() { do(plain, srv.URL+"/x", route) },
			func() { do(ours, "http://svc/x", nil) },
		}
		turn := 0
		for b.Loop() {
			for k := range 3 {
				j := (turn + k) % 3
				t0 := time.Now()
				send[j]()
				t[j] = append(t[j], time.Since(t0))
			}
			turn = (turn + 1) % 3
		}
		var med [3]float64
		for j := range t {
			slices.Sort(t[j])
			med[j] = float64(t[j][len(t[j])/2])
		}
		b.ReportMetric(med[0], "plain-ns/req")
		b.ReportMetric(med[1], "headers-ns/req")
		b.ReportMetric(med[2], "graylane-ns/req")
		b.ReportMetric(med[0]/med[2], "throughput-ratio")
		b.ReportMetric(med[1]/med[2], "same-headers-ratio")
	})
}

func backendInstance(tb testing.TB, svc string, srv *httptest.Server) discovery.Instance {
	tb.Helper()
	addr := srv.Listener.Addr().String()
	host, port, _ := splitHostPort(addr)
	return discovery.Instance{ID: svc + "-1", Service: svc, Address: host, Port: port, Version: "1.0"}
}

func splitHostPort(addr string) (string, int, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, err := strconv.Atoi(addr[i+1:])
			return addr[:i], p, err
		}
	}
	return addr, 0, nil
}
