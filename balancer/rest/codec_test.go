package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/graylane/graylane/balancer/rest"
)

// A protobuf endpoint: the request goes out as application/x-protobuf, the
// answer is decoded by its Content-Type into a message pointer the call
// allocates.
func TestProtobufCodec(t *testing.T) {
	var gotCT, gotAccept string
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotCT, gotAccept = r.Header.Get("Content-Type"), r.Header.Get("Accept")
		body, _ := io.ReadAll(r.Body)
		var in wrapperspb.StringValue
		if err := proto.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := structpb.NewStruct(map[string]any{"name": in.GetValue(), "id": "42"})
		b, _ := proto.Marshal(out)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}, rest.WithCodecs(rest.Protobuf, rest.JSON))
	got, err := rest.Post[*wrapperspb.StringValue, *structpb.Struct](context.Background(), c, "/users", wrapperspb.String("Ada"))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetFields()["name"].GetStringValue() != "Ada" || got.GetFields()["id"].GetStringValue() != "42" {
		t.Errorf("got %v", got)
	}
	if gotCT != "application/x-protobuf" || gotAccept != "application/x-protobuf, application/json;q=0.9" {
		t.Errorf("Content-Type %q, Accept %q", gotCT, gotAccept)
	}
	// Not a message: a clear error, nothing sent.
	if _, err := rest.Post[user, rest.Empty](context.Background(), c, "/users", user{}); err == nil ||
		!strings.Contains(err.Error(), "not a proto.Message") {
		t.Errorf("encoding a struct as protobuf: %v", err)
	}
}

// Content negotiation: a Client with several codecs decodes each answer
// by its Content-Type; a call's Encoding goes first in Accept.
func TestCodecNegotiation(t *testing.T) {
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Accept"), "application/x-www-form-urlencoded") {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			_, _ = io.WriteString(w, "id=42&name=Ada")
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		_, _ = io.WriteString(w, `{"id":"7","name":"Bo"}`)
	}, rest.WithCodecs(rest.JSON, rest.Form))
	u, err := rest.Get[user](context.Background(), c, "/u")
	if err != nil || u != (user{"7", "Bo"}) {
		t.Errorf("JSON answer: %+v, %v", u, err)
	}
	v, err := rest.Get[url.Values](context.Background(), c, "/u", rest.Encoding(rest.Form))
	if err != nil || v.Get("name") != "Ada" || v.Get("id") != "42" {
		t.Errorf("form answer: %v, %v", v, err)
	}
}

type signup struct {
	Name   string   `form:"name"`
	Age    int      `form:"age"`
	Tags   []string `form:"tag"`
	Beta   bool     `form:"beta,omitempty"`
	Secret string   `form:"-"`
	Plain  string
}

// A form endpoint: a struct with form tags goes out urlencoded and an
// urlencoded answer decodes into one.
func TestFormCodec(t *testing.T) {
	var got url.Values
	var ct string
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		ct = r.Header.Get("Content-Type")
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = r.PostForm
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = io.WriteString(w, r.PostForm.Encode())
	}, rest.WithCodecs(rest.Form))
	in := signup{Name: "Ada Lovelace", Age: 36, Tags: []string{"a", "b&c"}, Secret: "s", Plain: "p"}
	out, err := rest.Post[signup, signup](context.Background(), c, "/signup", in)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	want := url.Values{"name": {"Ada Lovelace"}, "age": {"36"}, "tag": {"a", "b&c"}, "Plain": {"p"}}
	if got.Encode() != want.Encode() {
		t.Errorf("server got %v, want %v", got, want)
	}
	in.Secret = ""
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("decoded %+v, want %+v", out, in)
	}

	for _, tt := range []struct {
		give any
		want string
	}{
		{struct{ C chan int }{}, `field C ("C"): unsupported type chan int`},
		{42, "cannot encode int"},
	} {
		if _, err := rest.Form.Marshal(tt.give); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Marshal(%T): %v, want %q", tt.give, err, tt.want)
		}
	}
	var bad struct {
		Age int `form:"age"`
	}
	if err := rest.Form.Unmarshal([]byte("age=old"), &bad); err == nil || !strings.Contains(err.Error(), `field Age ("age")`) {
		t.Errorf("Unmarshal age=old: %v", err)
	}
}

// Interceptors add an auth header and sign the body, once per call, after
// the headers are set.
func TestInterceptors(t *testing.T) {
	key := []byte("k")
	sign := func(b []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil))
	}
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer t0k3n" || r.Header.Get("X-Signature") != sign(body) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	},
		rest.WithInterceptors(func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer t0k3n")
			return nil
		}, func(r *http.Request) error {
			if r.GetBody == nil {
				return errors.New("body cannot be read again")
			}
			rc, err := r.GetBody()
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			r.Header.Set("X-Signature", sign(b))
			return err
		}))
	u, err := rest.Post[user, user](context.Background(), c, "/echo", user{"1", "Ada"})
	if err != nil || u != (user{"1", "Ada"}) {
		t.Fatalf("signed call: %+v, %v", u, err)
	}

	failing, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { t.Error("sent despite the interceptor's error") },
		rest.WithInterceptors(func(*http.Request) error { return errors.New("no token") }))
	if _, err := rest.Get[user](context.Background(), failing, "/x"); err == nil || !strings.Contains(err.Error(), "interceptor: no token") {
		t.Errorf("failing interceptor: %v", err)
	}
}

// apiError is a service's own error type, made by an error decoder.
type apiError struct {
	Status int
	Code   string `json:"code"`
}

func (e *apiError) Error() string { return fmt.Sprintf("api error %d: %s", e.Status, e.Code) }

func TestErrorDecoder(t *testing.T) {
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teapot" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"code":"duplicate"}`)
	}, rest.WithErrorDecoder(func(se *rest.StatusError) error {
		if se.StatusCode != http.StatusConflict {
			return nil // keep the *StatusError
		}
		e := &apiError{Status: se.StatusCode}
		if err := se.Decode(e); err != nil {
			return err
		}
		return e
	}))
	_, err := rest.Get[user](context.Background(), c, "/users/1")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "duplicate" || ae.Status != http.StatusConflict {
		t.Errorf("got %v, want the decoded *apiError", err)
	}
	if _, err := rest.Get[user](context.Background(), c, "/teapot"); rest.StatusCode(err) != http.StatusTeapot {
		t.Errorf("undecoded status: %v", err)
	}
}

// Per-client defaults: base path and headers on every call.
func TestClientDefaults(t *testing.T) {
	var path, hdr string
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		path, hdr = r.URL.EscapedPath(), r.Header.Get("X-Tenant")
	}, rest.WithBasePath("/api/v2/"), rest.WithHeader("X-Tenant", "t1"))
	if _, err := rest.Get[rest.Empty](context.Background(), c, "/users/{id}", rest.Param("id", "a b")); err != nil {
		t.Fatal(err)
	}
	if path != "/api/v2/users/a%20b" || hdr != "t1" {
		t.Errorf("path %q, header %q", path, hdr)
	}
	for _, bad := range []string{"http://x/y", "/a?b=c"} {
		bc := rest.New("svc", nil, rest.WithBasePath(bad))
		if _, err := rest.Get[rest.Empty](context.Background(), bc, "/"); !errors.Is(err, rest.ErrInvalidClient) {
			t.Errorf("base path %q: %v", bad, err)
		}
	}
	if _, err := rest.Get[rest.Empty](context.Background(), rest.New("svc", nil, rest.WithCodecs(nil)), "/"); !errors.Is(err, rest.ErrInvalidClient) {
		t.Errorf("nil codec: %v", err)
	}
}

// Streams both ways: an io.Reader request body is sent as it is read, and
// an io.ReadCloser response is handed over before the server has finished
// writing it. Each side waits for the other's first part, so neither can
// have buffered the whole body.
func TestStreamingBothWays(t *testing.T) {
	firstIn := make(chan string, 1)
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// HTTP/1 servers stop reading a body once the answer starts,
		// unless told otherwise.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		br := bufio.NewReader(r.Body)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Error(err)
			return
		}
		firstIn <- line // the client has not closed its body yet
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "part 1\n")
		w.(http.Flusher).Flush()
		rest, _ := io.ReadAll(br) // until the client ends its body
		_, _ = io.WriteString(w, "part 2: "+string(rest))
	})
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "line 1\n")
		<-firstIn // the server read it while the body is still open
		_, _ = io.WriteString(pw, "line 2")
		_ = pw.Close()
	}()
	body, err := rest.Post[io.Reader, io.ReadCloser](context.Background(), c, "/stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	br := bufio.NewReader(body)
	first, err := br.ReadString('\n')
	if err != nil || first != "part 1\n" {
		t.Fatalf("first part %q, %v", first, err)
	}
	rest2, _ := io.ReadAll(br)
	if string(rest2) != "part 2: line 2" {
		t.Errorf("second part %q", rest2)
	}
}

// A streamed response outlives Do, and the Client's timeout still bounds
// it only until the body is closed.
func TestStreamedResponseKeepsContext(t *testing.T) {
	c, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	}, rest.WithTimeout(1<<40))
	body, err := rest.Get[io.ReadCloser](context.Background(), c, "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	if err != nil || n != 1<<20 {
		t.Errorf("read %d bytes: %v", n, err)
	}
	if err := body.Close(); err != nil {
		t.Error(err)
	}
	// The body is not subject to the response limit.
	small, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("y"), 100))
	}, rest.WithMaxResponseBytes(10))
	b2, err := rest.Get[io.ReadCloser](context.Background(), small, "/")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(b2)
	b2.Close()
	if len(data) != 100 {
		t.Errorf("streamed %d bytes of 100", len(data))
	}
}
