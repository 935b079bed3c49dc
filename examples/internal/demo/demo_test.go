package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/graylane/graylane/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTolerance(t *testing.T) {
	tests := []struct {
		name string
		give float64 // the wanted share, in percent
		n    int
		want float64
	}{
		{"0% is exact", 0, 100, 0},
		{"100% is exact", 100, 100, 0},
		{"50% of 100", 50, 100, 25},
		{"10% of 900", 10, 900, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tolerance(tt.give, tt.n); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Tolerance(%v, %d) = %v, want %v", tt.give, tt.n, got, tt.want)
			}
		})
	}
}

func TestSend(t *testing.T) {
	var inFlight, most atomic.Int32
	tally := Send(100, func(i int) (string, error) {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		if i%10 == 0 {
			return "", fmt.Errorf("call %d failed", i)
		}
		return []string{"a", "b", "c"}[i%3], nil
	})
	counts := tally.Counts()
	// 90 successes: i%10 != 0, spread over i%3.
	want := map[string]int{}
	for i := range 100 {
		if i%10 != 0 {
			want[[]string{"a", "b", "c"}[i%3]]++
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if errs := tally.Errors(); len(errs) != 10 || !strings.HasPrefix(errs[0], "call ") {
		t.Errorf("errors %q, want 10 of them", errs)
	}
	if m := most.Load(); m > Workers || m < 2 {
		t.Errorf("%d calls in flight at most, want 2..%d", m, Workers)
	}
}

func TestChainsAndCounts(t *testing.T) {
	tests := []struct {
		give       map[string]int
		wantChains string
		wantCounts string
	}{
		{give: nil, wantChains: "", wantCounts: "-"},
		{give: map[string]int{"b > c": 2, "a > b": 10}, wantChains: "a > b: 10, b > c: 2", wantCounts: "a > b x10, b > c x2"},
	}
	for _, tt := range tests {
		if got := Chains(tt.give); got != tt.wantChains {
			t.Errorf("Chains(%v) = %q, want %q", tt.give, got, tt.wantChains)
		}
		if got := Counts(tt.give); got != tt.wantCounts {
			t.Errorf("Counts(%v) = %q, want %q", tt.give, got, tt.wantCounts)
		}
	}
}

func TestEmbeddedWorld(t *testing.T) {
	w, err := Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Name != "embedded registry" {
		t.Errorf("name %q", w.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, v := range []string{"1.0", "1.1"} {
		if err := w.Register(ctx, discovery.Registration{Service: "svc", Version: v, Region: "eu", Address: "127.0.0.1", Port: 8000 + i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Wait(ctx, "svc", 2); err != nil {
		t.Fatal(err)
	}
	snap := w.Registry.Watch("svc").Snapshot()
	if snap.Len() != 2 {
		t.Fatalf("%d instances, want 2", snap.Len())
	}
	if err := w.Register(ctx, discovery.Registration{Version: "1.0", Address: "127.0.0.1", Port: 1}); !errors.Is(err, discovery.ErrNoService) {
		t.Errorf("register without service: %v, want ErrNoService", err)
	}
	if err := w.Publish("<rule/>"); err != nil {
		t.Fatal(err)
	}
	if doc := w.Rules.Current(); doc == nil || string(doc.Data) != "<rule/>" {
		t.Errorf("rule watch holds %+v, want the published document", doc)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := w.Wait(short, "svc", 3); err == nil || !strings.Contains(err.Error(), "svc: 2 of 3 instances visible") {
		t.Errorf("Wait for a third instance: %v", err)
	}
}

func TestConsulWorldUnreachable(t *testing.T) {
	called := false
	_, err := Open("127.0.0.1:1", func(*api.Client) Consul { called = true; return Consul{} })
	if err == nil || !strings.Contains(err.Error(), "consul at 127.0.0.1:1") {
		t.Errorf("Open on a closed port: %v", err)
	}
	if called {
		t.Error("built the example's Consul pieces without a reachable agent")
	}
}

// byName sends "http://<service>/" to the address the map names, as a
// balancer's client would to an instance of the service.
type byName map[string]string

func (m byName) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, ok := m[req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("no instance of %q", req.URL.Host)
	}
	r := req.Clone(req.Context())
	r.URL.Host = addr
	return http.DefaultTransport.RoundTrip(r)
}

func TestHop(t *testing.T) {
	var fleet Fleet
	defer fleet.Close()
	routes := byName{}
	client := &http.Client{Transport: routes, Timeout: 5 * time.Second}
	fleet.Defer(client.CloseIdleConnections)
	serve := func(service string, h http.Handler) {
		addr, err := fleet.Serve(h)
		if err != nil {
			t.Fatal(err)
		}
		routes[service] = addr.String()
	}
	serve("b", Hop("b@1.1", "", client))
	serve("a", Hop("a@1.1", "b", client))
	serve("entry", Hop("", "a", client))
	serve("broken", Hop("x@1.0", "missing", client))
	outside := &http.Client{Timeout: 5 * time.Second}
	defer outside.CloseIdleConnections()

	tests := []struct {
		give    string // the service the outside client calls
		want    string
		wantErr string
	}{
		{give: "entry", want: "a@1.1 > b@1.1"},
		{give: "a", want: "a@1.1 > b@1.1"},
		{give: "b", want: "b@1.1"},
		{give: "broken", wantErr: `answered 502 Bad Gateway: x@1.0: Get "http://missing/": no instance of "missing"`},
	}
	for _, tt := range tests {
		got, err := Get(context.Background(), outside, "http://"+routes[tt.give]+"/", nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("calling %s: error %v, want one containing %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("calling %s = %q, %v, want %q", tt.give, got, err, tt.want)
		}
	}
}

func TestDoHeaders(t *testing.T) {
	var fleet Fleet
	defer fleet.Close()
	addr, err := fleet.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, set := r.Header["Empty"]
		fmt.Fprintf(w, "%s %s %v", r.Method, r.Header.Get("X-A"), set)
	}))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	status, body, err := Do(context.Background(), client, http.MethodPost, "http://"+addr.String()+"/", map[string]string{"x-a": "1", "empty": ""})
	if err != nil || status != http.StatusOK || string(body) != "POST 1 false" {
		t.Errorf("Do = %d %q %v, want 200 %q", status, body, err, "POST 1 false")
	}
}

func TestFleetClosesInReverse(t *testing.T) {
	var fleet Fleet
	var order []int
	for i := range 3 {
		fleet.Defer(func() { order = append(order, i) })
	}
	fleet.Close()
	fleet.Close() // a second Close has nothing left to do
	if fmt.Sprint(order) != "[2 1 0]" {
		t.Errorf("closed in order %v, want [2 1 0]", order)
	}
}
