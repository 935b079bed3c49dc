package balancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// backend is one test instance on loopback.
type backend struct {
	in    discovery.Instance
	srv   *httptest.Server
	calls atomic.Int64
	// status, if set, is answered instead of 200.
	status atomic.Int64
	// seen records the last request's headers and body.
	lastHeader atomic.Pointer[http.Header]
	lastBody   atomic.Pointer[string]
}

// startBackend serves h (or a default echo of the instance ID) as an
// instance of svc at version v.
func startBackend(t testing.TB, svc, id, v string, h http.Handler) *backend {
	t.Helper()
	be := &backend{}
	be.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		be.calls.Add(1)
		hdr := r.Header.Clone()
		be.lastHeader.Store(&hdr)
		body, _ := io.ReadAll(r.Body)
		s := string(body)
		be.lastBody.Store(&s)
		if code := be.status.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		_, _ = io.WriteString(w, id)
	}))
	t.Cleanup(be.srv.Close)
	host, port, _ := net.SplitHostPort(be.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	be.in = discovery.Instance{ID: id, Service: svc, Address: host, Port: p, Version: v}
	return be
}

func get(t testing.TB, c *http.Client, ctx context.Context, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTransportResolvesAndPropagates(t *testing.T) {
	reg := discovery.NewStatic()
	b1 := startBackend(t, "svc-b", "b-1.0", "1.0", nil)
	b2 := startBackend(t, "svc-b", "b-1.1", "1.1", nil)
	reg.Set("svc-b", b1.in, b2.in)
	b := newBalancer(t, reg, WithForwardHeaders("x-user"))
	client := b.Client()
	defer client.CloseIdleConnections()

	route := mustRoute(t, `{"svc-a":"1.0","svc-b":"1.1"}`)
	route.Header = http.Header{"X-User": {"u42"}}
	ctx := WithRoute(context.Background(), route)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc-b/users/42?q=1", nil)
	req.Header.Set("Accept", "text/plain")
	orig := req.Header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "b-1.1" {
		t.Fatalf("answered by %q, want b-1.1", body)
	}
	h := *b2.lastHeader.Load()
	if got := h.Get(rule.TypeVersion.HeaderName()); got != `{"svc-a":"1.0","svc-b":"1.1"}` {
		t.Errorf("n-d-version sent %q", got)
	}
	if h.Get("X-User") != "u42" || h.Get("Accept") != "text/plain" {
		t.Errorf("headers sent: %v", h)
	}
	if req.URL.Host != "svc-b" || len(req.Header) != len(orig) || req.Header.Get(rule.TypeVersion.HeaderName()) != "" {
		t.Errorf("caller's request modified: %v %v", req.URL, req.Header)
	}
	if resp.Request != req {
		t.Error("response does not point at the caller's request")
	}

	// A request's own n-d-* headers route it when its context has no route.
	if _, body := get(t, client, context.Background(), "http://svc-b/", map[string]string{rule.TypeVersion.HeaderName(): "1.0"}); body != "b-1.0" {
		t.Errorf("header-routed request answered by %q", body)
	}

	// host:port URLs pass through untouched.
	if _, body := get(t, client, ctx, b1.srv.URL+"/x", nil); body != "b-1.0" {
		t.Errorf("direct URL answered by %q", body)
	}
	if b1.lastHeader.Load().Get(rule.TypeVersion.HeaderName()) != "" {
		t.Error("routing headers added to a pass-through request")
	}

	// No instance: the error wraps ErrNoInstance.
	_, err = client.Get("http://svc-missing/")
	if !errors.Is(err, ErrNoInstance) {
		t.Errorf("missing service: %v", err)
	}
}

func TestTransportRetries(t *testing.T) {
	reg := discovery.NewStatic()
	bad := startBackend(t, "svc", "bad", "1.0", nil)
	bad.status.Store(http.StatusServiceUnavailable)
	good := startBackend(t, "svc", "good", "1.0", nil)
	dead := startBackend(t, "svc", "dead", "1.0", nil)
	dead.srv.Close() // connection refused
	reg.Set("svc", bad.in, good.in, dead.in)
	b := newBalancer(t, reg, WithRetry(RetryPolicy{Attempts: 3, MinBackoff: 1, MaxBackoff: 2}), WithEjection(Ejection{Failures: -1}))
	client := b.Client()
	defer client.CloseIdleConnections()

	for i := range 30 {
		code, body := get(t, client, context.Background(), "http://svc/", nil)
		if code != 200 || body != "good" {
			t.Fatalf("GET %d: %d %q, want 200 from good", i, code, body)
		}
	}

	// POST is not retried: some attempts end on bad (503) or dead (error).
	var failed int
	for range 30 {
		resp, err := client.Post("http://svc/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			failed++
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		}
	}
	if failed == 0 {
		t.Error("POST was retried")
	}

	// ... unless marked retryable; its body is sent again intact.
	ctx := WithRetryable(context.Background())
	for i := range 30 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://svc/", bytes.NewReader([]byte("payload-"+strconv.Itoa(i))))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("retryable POST: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || *good.lastBody.Load() != "payload-"+strconv.Itoa(i) {
			t.Fatalf("retryable POST: %d, body at good %q", resp.StatusCode, *good.lastBody.Load())
		}
	}
	// A body without GetBody is buffered for the retries.
	for i := range 10 {
		body := io.NopCloser(strings.NewReader("stream-" + strconv.Itoa(i)))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://svc/", body)
		req.ContentLength = int64(len("stream-" + strconv.Itoa(i)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("PUT with a stream body: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || *good.lastBody.Load() != "stream-"+strconv.Itoa(i) {
			t.Fatalf("PUT with a stream body: %d, body at good %q", resp.StatusCode, *good.lastBody.Load())
		}
	}
}

func TestTransportGivesUpWithLastAnswer(t *testing.T) {
	reg := discovery.NewStatic()
	bad := startBackend(t, "svc", "bad", "1.0", nil)
	bad.status.Store(http.StatusBadGateway)
	reg.Set("svc", bad.in)
	b := newBalancer(t, reg, WithRetry(RetryPolicy{Attempts: 3, MinBackoff: 1, MaxBackoff: 2}))
	client := b.Client()
	defer client.CloseIdleConnections()
	code, _ := get(t, client, context.Background(), "http://svc/", nil)
	if code != http.StatusBadGateway || bad.calls.Load() != 3 {
		t.Fatalf("got %d after %d calls, want 502 after 3", code, bad.calls.Load())
	}
}

func TestTransportAppliesRuleWithoutRoute(t *testing.T) {
	reg := discovery.NewStatic()
	b1 := startBackend(t, "svc-b", "b-1.0", "1.0", nil)
	b2 := startBackend(t, "svc-b", "b-1.1", "1.1", nil)
	reg.Set("svc-b", b1.in, b2.in)
	r, err := rule.Parse([]byte(`<rule><strategy-release>
<conditions type="blue-green"><condition id="c" expression="#H['xyz'] == '2'" version-id="new"/></conditions>
<routes><route id="new" type="version">{"svc-b":"1.1"}</route></routes>
</strategy-release><strategy><version>{"svc-b":"1.0"}</version></strategy></rule>`))
	if err != nil {
		t.Fatal(err)
	}
	b := newBalancer(t, reg, WithRule(r))
	client := b.Client()
	defer client.CloseIdleConnections()
	if _, body := get(t, client, context.Background(), "http://svc-b/", map[string]string{"xyz": "2"}); body != "b-1.1" {
		t.Errorf("xyz=2 answered by %q", body)
	}
	if _, body := get(t, client, context.Background(), "http://svc-b/?xyz=1", nil); body != "b-1.0" {
		t.Errorf("xyz=1 answered by %q", body)
	}
}

func TestIsServiceHost(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"svc-a", true},
		{"svc-a.service", true},
		{"svc-a:8080", false},
		{"127.0.0.1", false},
		{"[::1]", false},
		{"[::1]:80", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isServiceHost(tt.give); got != tt.want {
			t.Errorf("isServiceHost(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestJitterBackoff(t *testing.T) {
	for attempt := range 40 {
		for range 50 {
			d := jitterBackoff(10, 100, attempt, nil)
			if d < 5 || d > 100 {
				t.Fatalf("attempt %d: backoff %v outside [5, 100]", attempt, d)
			}
		}
	}
}

func ExampleBalancer_Client() {
	// Two versions of svc-b on loopback.
	serve := func(version string) (*httptest.Server, discovery.Instance) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "svc-b %s got n-d-version %s", version, r.Header.Get("n-d-version"))
		}))
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		return srv, discovery.Instance{ID: "b-" + version, Address: host, Port: p, Version: version}
	}
	old, oldIn := serve("1.0")
	defer old.Close()
	gray, grayIn := serve("1.1")
	defer gray.Close()
	reg := discovery.NewStatic()
	reg.Set("svc-b", oldIn, grayIn)

	b, _ := New(reg)
	defer b.Close()
	client := b.Client()
	defer client.CloseIdleConnections()

	// The route normally comes from the inbound request (Middleware).
	ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc-b/users/42", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: svc-b 1.1 got n-d-version 1.1
}
