package lease

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// frozenAgent is a Consul agent faked over HTTP that answers enough for a
// Lock to hold (registration, check updates, session, the lock key) until
// freeze; from then on it accepts requests and never answers them, as a
// frozen agent process does, until thaw. A request whose client gives up
// ends; after thaw the lock key reads as absent, so that consul/api's lock
// monitor, which has no context, ends.
type frozenAgent struct {
	key, value string
	frozen     chan struct{}
	thawed     chan struct{}
	mu         sync.Mutex
	held       bool
	released   chan struct{} // closed when the lock is released
}

func (f *frozenAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-f.frozen:
		select {
		case <-f.thawed:
		case <-r.Context().Done():
			return
		}
	default:
	}
	w.Header().Set("X-Consul-Index", "1")
	select {
	case <-f.thawed:
		if strings.HasPrefix(r.URL.Path, "/v1/kv/") && r.Method == http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("true"))
		return
	default:
	}
	switch p := r.URL.Path; {
	case p == "/v1/session/create":
		_ = json.NewEncoder(w).Encode(map[string]string{"ID": "session-1"})
	case strings.HasPrefix(p, "/v1/session/renew/"):
		_ = json.NewEncoder(w).Encode([]map[string]string{{"ID": "session-1", "TTL": DefaultSessionTTL.String()}})
	case p == "/v1/kv/"+f.key && r.Method == http.MethodGet:
		if r.URL.Query().Get("index") != "" { // a blocking read: until a change
			f.mu.Lock()
			released := f.released
			f.mu.Unlock()
			select {
			case <-released:
			case <-f.frozen:
				select {
				case <-f.thawed:
				case <-r.Context().Done():
				}
				w.WriteHeader(http.StatusNotFound)
				return
			case <-r.Context().Done():
				return
			}
		}
		f.mu.Lock()
		held := f.held
		f.mu.Unlock()
		if !held {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode([]map[string]any{{"Key": f.key, "Session": "session-1", "Flags": api.LockFlagValue,
			"Value": base64.StdEncoding.EncodeToString([]byte(f.value)), "ModifyIndex": 1}})
	case p == "/v1/kv/"+f.key && r.URL.Query().Has("acquire"):
		f.mu.Lock()
		f.held = true
		f.mu.Unlock()
		_, _ = w.Write([]byte("true"))
	case p == "/v1/kv/"+f.key && r.URL.Query().Has("release"):
		f.mu.Lock()
		if f.held {
			f.held = false
			close(f.released)
		}
		f.mu.Unlock()
		_, _ = w.Write([]byte("true"))
	default: // registration, check updates, session destroy, deregistration
		_, _ = w.Write([]byte("true"))
	}
}

// An agent that stops answering while the lock is held (its process
// frozen): Release still returns, within releaseTimeout, and once the
// agent answers again no goroutine of the term is left.
func TestReleaseFrozenAgent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := &frozenAgent{key: testKey, value: "one", frozen: make(chan struct{}), thawed: make(chan struct{}), released: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	cl, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Transport.CloseIdleConnections()
	l, err := New(cl, testService, testKey, WithName("one"), WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	term, err := l.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	close(f.frozen)
	released := make(chan struct{})
	go func() {
		defer close(released)
		term.Release()
	}()
	select {
	case <-released:
	case <-time.After(60 * time.Second): // a guard against hanging, not a measurement
		t.Error("Release did not return while the agent does not answer")
	}
	close(f.thawed)
	<-released
}
