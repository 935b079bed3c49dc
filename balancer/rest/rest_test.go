package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/balancer/rest"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// newServer starts a test server and returns a Client bound to it by its
// host:port as the service name, through a plain *http.Client.
func newServer(t *testing.T, h http.HandlerFunc, opts ...rest.Option) (*rest.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return rest.New(host, hc, opts...), srv
}

func TestGetDecodesJSON(t *testing.T) {
	var got *http.Request
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"42","name":"Ada"}`)
	})
	u, err := rest.Get[user](context.Background(), c, "/users/{id}",
		rest.Param("id", "a/b c"), rest.Query("fields", "name&id"), rest.Query("x", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if u != (user{"42", "Ada"}) {
		t.Errorf("user = %+v", u)
	}
	if got.Method != http.MethodGet {
		t.Errorf("method = %s", got.Method)
	}
	if want := "/users/a%2Fb%20c"; got.URL.EscapedPath() != want {
		t.Errorf("path = %s, want %s", got.URL.EscapedPath(), want)
	}
	if q := got.URL.Query(); q.Get("fields") != "name&id" || q.Get("x") != "1" {
		t.Errorf("query = %s", got.URL.RawQuery)
	}
	if a := got.Header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept = %q", a)
	}
	if ct := got.Header.Get("Content-Type"); ct != "" {
		t.Errorf("GET carried Content-Type %q", ct)
	}
	if got.ContentLength != 0 {
		t.Errorf("GET carried a body of %d bytes", got.ContentLength)
	}
}

func TestMethodsSendJSONBodies(t *testing.T) {
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"method": r.Method, "body": string(body), "ct": r.Header.Get("Content-Type"),
		})
	})
	ctx := context.Background()
	in := user{"1", "Grace"}
	type echo map[string]string
	tests := []struct {
		give string
		call func() (echo, error)
		want echo
	}{
		{"post", func() (echo, error) { return rest.Post[user, echo](ctx, c, "/u", in) },
			echo{"method": "POST", "body": `{"id":"1","name":"Grace"}`, "ct": "application/json"}},
		{"put", func() (echo, error) { return rest.Put[user, echo](ctx, c, "/u", in) },
			echo{"method": "PUT", "body": `{"id":"1","name":"Grace"}`, "ct": "application/json"}},
		{"patch", func() (echo, error) { return rest.Patch[map[string]int, echo](ctx, c, "/u", map[string]int{"n": 1}) },
			echo{"method": "PATCH", "body": `{"n":1}`, "ct": "application/json"}},
		{"delete", func() (echo, error) { return rest.Delete[echo](ctx, c, "/u") },
			echo{"method": "DELETE", "body": "", "ct": ""}},
		{"raw bytes", func() (echo, error) { return rest.Post[[]byte, echo](ctx, c, "/u", []byte(`[1,2]`)) },
			echo{"method": "POST", "body": `[1,2]`, "ct": "application/json"}},
		{"content type option", func() (echo, error) {
			return rest.Post[[]byte, echo](ctx, c, "/u", []byte(`a=1`), rest.Header("Content-Type", "application/x-www-form-urlencoded"))
		}, echo{"method": "POST", "body": `a=1`, "ct": "application/x-www-form-urlencoded"}},
		{"custom method no body", func() (echo, error) { return rest.Do[rest.Empty, echo](ctx, c, "OPTIONS", "/u", rest.Empty{}) },
			echo{"method": "OPTIONS", "body": "", "ct": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	big := strings.Repeat("x", rest.MaxErrorBody+100)
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":"no_user","message":"no user 7"}`)
		case "/busy":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, big)
		case "/redirect-loop":
			w.WriteHeader(http.StatusNotModified)
		}
	})
	ctx := context.Background()

	_, err := rest.Get[user](ctx, c, "/missing")
	var se *rest.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *StatusError", err, err)
	}
	if se.StatusCode != 404 || se.Method != "GET" || !strings.HasSuffix(se.URL, "/missing") || se.Truncated {
		t.Errorf("StatusError = %+v", se)
	}
	if want := `: 404 Not Found: {"code":"no_user","message":"no user 7"}`; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Error() = %q, want suffix %q", err.Error(), want)
	}
	var doc struct{ Code, Message string }
	if err := se.Decode(&doc); err != nil || doc.Code != "no_user" {
		t.Errorf("Decode = %+v, %v", doc, err)
	}
	if got := rest.StatusCode(err); got != 404 {
		t.Errorf("StatusCode = %d", got)
	}

	_, err = rest.Post[user, rest.Empty](ctx, c, "/busy", user{})
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StatusError", err)
	}
	if se.StatusCode != 503 || len(se.Body) != rest.MaxErrorBody || !se.Truncated || se.Header.Get("Retry-After") != "3" {
		t.Errorf("StatusError: code %d, body %d bytes, truncated %v, header %v", se.StatusCode, len(se.Body), se.Truncated, se.Header)
	}
	if len(err.Error()) > 400 {
		t.Errorf("Error() is %d bytes long; the body should be cut short", len(err.Error()))
	}
	if se.Decode(new(any)) == nil {
		t.Error("Decode of a truncated body succeeded")
	}

	_, err = rest.Get[rest.Empty](ctx, c, "/redirect-loop")
	if rest.StatusCode(err) != 304 {
		t.Errorf("304: err = %v, want a StatusError", err)
	}
	if rest.StatusCode(errors.New("x")) != 0 || rest.StatusCode(nil) != 0 {
		t.Error("StatusCode of a non-status error is not 0")
	}
}

func TestResponseShapes(t *testing.T) {
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/empty":
			w.WriteHeader(http.StatusOK)
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>gateway says no</html>")
		case "/wrong-shape":
			_, _ = io.WriteString(w, `["not","an","object"]`)
		case "/trailing":
			_, _ = io.WriteString(w, `{"id":"1"} {"id":"2"}`)
		case "/big":
			_, _ = io.WriteString(w, `"`+strings.Repeat("y", 2000)+`"`)
		default:
			_, _ = io.WriteString(w, `{"id":"9","name":"raw"}`)
		}
	}, rest.WithMaxResponseBytes(1000))
	ctx := context.Background()

	if u, err := rest.Get[user](ctx, c, "/204"); err != nil || u != (user{}) {
		t.Errorf("204: %+v, %v", u, err)
	}
	if u, err := rest.Get[*user](ctx, c, "/empty"); err != nil || u != nil {
		t.Errorf("empty body: %+v, %v", u, err)
	}
	if b, err := rest.Get[[]byte](ctx, c, "/raw"); err != nil || string(b) != `{"id":"9","name":"raw"}` {
		t.Errorf("raw: %q, %v", b, err)
	}
	if m, err := rest.Get[json.RawMessage](ctx, c, "/raw"); err != nil || !json.Valid(m) {
		t.Errorf("RawMessage: %q, %v", m, err)
	}
	if _, err := rest.Get[rest.Empty](ctx, c, "/html"); err != nil {
		t.Errorf("Empty response decoded the body: %v", err)
	}

	for _, path := range []string{"/html", "/wrong-shape", "/trailing"} {
		_, err := rest.Get[user](ctx, c, path)
		var de *rest.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want *DecodeError", path, err)
			continue
		}
		if de.StatusCode != 200 || len(de.Body) == 0 || de.Err == nil {
			t.Errorf("%s: DecodeError = %+v", path, de)
		}
	}
	_, err := rest.Get[user](ctx, c, "/html")
	if want := "(text/html)"; !strings.Contains(err.Error(), want) {
		t.Errorf("Error() = %q lacks %q", err, want)
	}

	_, err = rest.Get[string](ctx, c, "/big")
	if !errors.Is(err, rest.ErrResponseTooLarge) {
		t.Errorf("big: err = %v, want ErrResponseTooLarge", err)
	}
}

func TestPathErrors(t *testing.T) {
	var sent atomic.Int32
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { sent.Add(1) })
	tests := []struct {
		give string
		opts []rest.CallOption
		want string
	}{
		{"/users/{id}", nil, "no Param for placeholder {id}"},
		{"/users", []rest.CallOption{rest.Param("id", "1")}, `parameter "id" has no placeholder`},
		{"/users/{id", []rest.CallOption{rest.Param("id", "1")}, "unterminated placeholder at offset 7"},
		{"/users/{}", nil, "bad placeholder"},
		{"/users/{a b}", nil, "bad placeholder"},
		{"/users/id}", nil, "unmatched '}' at offset 9"},
		{"http://evil.example/x", nil, "must be a path relative to the service"},
		{"//evil.example/x", nil, "must be a path relative to the service"},
		{"/%zz", nil, "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := rest.Get[rest.Empty](context.Background(), c, tt.give, tt.opts...)
			var pe *rest.PathError
			if !errors.As(err, &pe) || pe.Path != tt.give {
				t.Fatalf("err = %v, want *PathError for %q", err, tt.give)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("%d bad calls reached the server", n)
	}
}

func TestPathJoin(t *testing.T) {
	var paths []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		paths = append(paths, r.URL.String())
		return respond(200, "{}"), nil
	})
	hc := &http.Client{Transport: rt}
	tests := []struct {
		give, base, path string
		want             string
	}{
		{"service", "", "/a/b", "http://svc/a/b"},
		{"no slash", "", "a", "http://svc/a"},
		{"empty", "", "", "http://svc"},
		{"query in path", "", "/a?x=1&y=2", "http://svc/a?x=1&y=2"},
		{"prefix", "https://api.example.com/v2/", "/users", "https://api.example.com/v2/users"},
		{"escaped prefix", "http://h/a%2Fb", "/c", "http://h/a%2Fb/c"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var opts []rest.Option
			if tt.base != "" {
				opts = append(opts, rest.WithBaseURL(tt.base))
			}
			c := rest.New("svc", hc, opts...)
			paths = paths[:0]
			if _, err := rest.Get[rest.Empty](context.Background(), c, tt.path); err != nil {
				t.Fatal(err)
			}
			if paths[0] != tt.want {
				t.Errorf("URL = %s, want %s", paths[0], tt.want)
			}
		})
	}
}

func TestInvalidClient(t *testing.T) {
	tests := []struct {
		give string
		c    *rest.Client
	}{
		{"empty service", rest.New("", nil)},
		{"slash in service", rest.New("a/b", nil)},
		{"space in service", rest.New("a b", nil)},
		{"relative base", rest.New("svc", nil, rest.WithBaseURL("/v1"))},
		{"ftp base", rest.New("svc", nil, rest.WithBaseURL("ftp://h/"))},
		{"base with query", rest.New("svc", nil, rest.WithBaseURL("http://h/?a=1"))},
		{"nil client", nil},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := rest.Get[user](context.Background(), tt.c, "/x")
			if !errors.Is(err, rest.ErrInvalidClient) {
				t.Errorf("err = %v, want ErrInvalidClient", err)
			}
		})
	}
	//lint:ignore SA1012 a nil context must be an error, not a panic
	if _, err := rest.Get[user](nil, rest.New("svc", nil), "/x"); err == nil {
		t.Error("nil context accepted")
	}
}

func TestHeaders(t *testing.T) {
	var got http.Header
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Clone()
		return respond(200, "{}"), nil
	})
	c := rest.New("svc", &http.Client{Transport: rt}, rest.WithHeader("X-Api-Key", "k1"), rest.WithHeader("X-Team", "a"))
	_, err := rest.Get[rest.Empty](context.Background(), c, "/", rest.Header("X-Team", "b"), rest.Header("Accept", "application/problem+json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Api-Key") != "k1" || got.Get("X-Team") != "b" || got.Get("Accept") != "application/problem+json" {
		t.Errorf("headers = %v", got)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, rest.WithTimeout(50*time.Millisecond))
	defer close(release)
	_, err := rest.Get[user](context.Background(), c, "/slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rest.Get[user](ctx, c, "/slow"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}

// TestBodyReplayable checks that a transport retrying a POST can resend the
// same bytes (the balancer's retries need GetBody).
func TestBodyReplayable(t *testing.T) {
	var bodies []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.GetBody == nil {
			t.Fatal("request without GetBody")
		}
		for range 2 {
			b, err := r.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(b)
			bodies = append(bodies, string(data))
		}
		return respond(201, `{"id":"5"}`), nil
	})
	c := rest.New("svc", &http.Client{Transport: rt})
	u, err := rest.Post[user, user](context.Background(), c, "/users", user{Name: "Lin"})
	if err != nil || u.ID != "5" {
		t.Fatalf("%+v, %v", u, err)
	}
	want := `{"id":"","name":"Lin"}`
	if len(bodies) != 2 || bodies[0] != want || bodies[1] != want {
		t.Errorf("bodies = %q", bodies)
	}
}

type ctxKey struct{}

func TestWithContext(t *testing.T) {
	var got any
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Context().Value(ctxKey{})
		return respond(200, "{}"), nil
	})
	c := rest.New("svc", &http.Client{Transport: rt})
	mark := func(ctx context.Context) context.Context { return context.WithValue(ctx, ctxKey{}, "retry-ok") }
	if _, err := rest.Post[user, rest.Empty](context.Background(), c, "/", user{}, rest.WithContext(mark), rest.WithContext(nil)); err != nil {
		t.Fatal(err)
	}
	if got != "retry-ok" {
		t.Errorf("transport saw %v", got)
	}
}

func TestEncodeError(t *testing.T) {
	var sent atomic.Int32
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) { sent.Add(1); return respond(200, "{}"), nil })
	c := rest.New("svc", &http.Client{Transport: rt})
	_, err := rest.Post[chan int, rest.Empty](context.Background(), c, "/", make(chan int))
	if err == nil || !strings.Contains(err.Error(), "encode request") {
		t.Errorf("err = %v", err)
	}
	if sent.Load() != 0 {
		t.Error("request sent despite the encode error")
	}
}

// TestBodiesClosed checks every outcome closes the body, and that a plain
// server's keep-alive connection is reused across successes and failures
// (bodies drained).
func TestBodiesClosed(t *testing.T) {
	var open atomic.Int32
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		code, body := 200, `{"id":"1"}`
		switch r.URL.Path {
		case "/500":
			code, body = 500, strings.Repeat("e", 100_000)
		case "/bad":
			body = "nope"
		case "/big":
			body = `"` + strings.Repeat("b", 5000) + `"`
		case "/204":
			code = 204
		}
		resp := respond(code, body)
		open.Add(1)
		resp.Body = &trackBody{Reader: strings.NewReader(body), open: &open}
		return resp, nil
	})
	c := rest.New("svc", &http.Client{Transport: rt}, rest.WithMaxResponseBytes(100))
	for _, p := range []string{"/ok", "/500", "/bad", "/big", "/204"} {
		_, _ = rest.Get[user](context.Background(), c, p)
		if n := open.Load(); n != 0 {
			t.Errorf("%s: %d bodies left open", p, n)
		}
	}

	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/err" {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, strings.Repeat("e", 10_000))
			return
		}
		_, _ = io.WriteString(w, `{"id":"1","name":"x","extra":"`+strings.Repeat("p", 10_000)+`"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c = rest.New(strings.TrimPrefix(srv.URL, "http://"), &http.Client{Transport: tr})
	for i := range 10 {
		p := "/ok"
		if i%2 == 1 {
			p = "/err"
		}
		_, _ = rest.Get[user](context.Background(), c, p)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential calls, want 1 (bodies not drained?)", n)
	}
}

func TestAccessors(t *testing.T) {
	c := rest.New("orders", nil, rest.WithBaseURL("https://h:8443/api/"))
	if c.Service() != "orders" || c.BaseURL() != "https://h:8443/api" {
		t.Errorf("Service %q BaseURL %q", c.Service(), c.BaseURL())
	}
	if got := rest.New("", nil).BaseURL(); got != "" {
		t.Errorf("BaseURL of an invalid client = %q", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func respond(code int, body string) *http.Response {
	return &http.Response{
		StatusCode: code,
		Status:     http.StatusText(code),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
	}
}

type trackBody struct {
	io.Reader
	open   *atomic.Int32
	closed bool
}

func (b *trackBody) Close() error {
	if !b.closed {
		b.closed = true
		b.open.Add(-1)
	}
	return nil
}
