package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestBuildRegistration(t *testing.T) {
	keys := DefaultKeys()
	ok := Registration{Service: "orders", Address: "10.0.0.1", Port: 80}
	tests := []struct {
		name string
		give func(r *Registration)
		want string // part of the error; "" for success
	}{
		{name: "minimal", give: func(*Registration) {}},
		{name: "no service", give: func(r *Registration) { r.Service = "" }, want: "empty service name"},
		{name: "slash in service", give: func(r *Registration) { r.Service = "a/b" }, want: `service name "a/b"`},
		{name: "no address", give: func(r *Registration) { r.Address = "" }, want: "empty address"},
		{name: "port", give: func(r *Registration) { r.Port = 70000 }, want: "port 70000"},
		{name: "tiny ttl", give: func(r *Registration) { r.Check.TTL = time.Millisecond }, want: "check TTL 1ms"},
		{name: "tiny interval", give: func(r *Registration) { r.Check.HTTP = "http://x/h"; r.Check.Interval = time.Millisecond }, want: "check interval"},
		{name: "relative probe URL", give: func(r *Registration) { r.Check.ProbeHTTP = "/health" }, want: `probe URL "/health"`},
		{name: "probe with HTTP check", give: func(r *Registration) { r.Check.HTTP = "http://x/h"; r.Check.NoProbe = true }, want: "for TTL checks"},
		{name: "probe both ways", give: func(r *Registration) { r.Check.ProbeHTTP = "http://x/h"; r.Check.NoProbe = true }, want: "both ProbeHTTP and NoProbe"},
		{name: "relative URL", give: func(r *Registration) { r.Check.HTTP = "/health" }, want: `check URL "/health"`},
		{name: "bad meta key", give: func(r *Registration) { r.Meta = map[string]string{"a.b": "x"} }, want: `meta key "a.b"`},
		{name: "negative", give: func(r *Registration) { r.DeregisterAfter = -time.Second }, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.give(&r)
			_, _, _, err := buildRegistration(r, &keys, "20240305-102030-456-1234-567-890", time.UnixMilli(1700000000000))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidRegistration) {
				t.Fatalf("error = %v, want one containing %q and wrapping ErrInvalidRegistration", err, tt.want)
			}
		})
	}
}

func TestBuildRegistrationContents(t *testing.T) {
	keys := Keys{Version: "app_version"}.withDefaults()
	ar, period, ttl, err := buildRegistration(Registration{
		Service: "orders", Address: "10.0.0.1", Port: 80, Version: "1.1", Zone: "z1",
		Tags: []string{"blue"}, Meta: map[string]string{"team": "a"}, DeregisterAfter: time.Minute,
	}, &keys, "20240305-102030-456-1234-567-890", time.UnixMilli(1700000000000))
	if err != nil {
		t.Fatal(err)
	}
	if ar.ID != "orders-20240305-102030-456-1234-567-890" || ar.Name != "orders" {
		t.Fatalf("ID %q name %q", ar.ID, ar.Name)
	}
	if ar.Meta["app_version"] != "1.1" || ar.Meta["zone"] != "z1" || ar.Meta["team"] != "a" ||
		ar.Meta["spring_application_uuid"] != "20240305-102030-456-1234-567-890" || ar.Meta["graylane_started"] != "1700000000000" {
		t.Fatalf("meta = %v", ar.Meta)
	}
	if strings.Join(ar.Tags, ",") != "blue,app_version=1.1,zone=z1" {
		t.Fatalf("tags = %v", ar.Tags)
	}
	if !ttl || period != DefaultCheckTTL/3 || ar.Check.TTL != "10s" || ar.Check.Status != api.HealthPassing || ar.Check.DeregisterCriticalServiceAfter != "1m0s" {
		t.Fatalf("check = %+v, period %s, ttl %v", ar.Check, period, ttl)
	}
	// The mapping reads back what the registrar writes.
	in, ok, problems := instanceFromEntry("orders", &keys, &api.ServiceEntry{Service: &api.AgentService{ID: ar.ID, Address: ar.Address, Port: ar.Port, Tags: ar.Tags, Meta: ar.Meta}})
	if !ok || len(problems) > 0 || in.Version != "1.1" || in.Zone != "z1" || !in.Started.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("read back %+v, %v, %v", in, ok, problems)
	}
}

// fakeAgent imitates the agent endpoints the registrar uses and can
// "restart", forgetting its services.
type fakeAgent struct {
	mu        sync.Mutex
	services  map[string]bool
	registers int
	ttlPasses int
	// statuses lists the status of every registration and TTL update:
	// "register:<status>" or "ttl:<status>".
	statuses []string
}

func (a *fakeAgent) reports() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.statuses...)
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/v1/agent/service/register":
		a.registers++
		var reg api.AgentServiceRegistration
		_ = jsonDecode(r, &reg)
		a.services[reg.ID] = true
		if reg.Check != nil {
			a.statuses = append(a.statuses, "register:"+reg.Check.Status)
		}
	case strings.HasPrefix(p, "/v1/agent/check/update/service:"):
		if !a.services[strings.TrimPrefix(p, "/v1/agent/check/update/service:")] {
			http.Error(w, "Unknown check ID", http.StatusNotFound)
			return
		}
		var upd struct{ Status, Output string }
		_ = jsonDecode(r, &upd)
		a.statuses = append(a.statuses, "ttl:"+upd.Status)
		if upd.Status == api.HealthPassing {
			a.ttlPasses++
		}
	case strings.HasPrefix(p, "/v1/agent/service/deregister/"):
		delete(a.services, strings.TrimPrefix(p, "/v1/agent/service/deregister/"))
	case strings.HasPrefix(p, "/v1/agent/service/"):
		if !a.services[strings.TrimPrefix(p, "/v1/agent/service/")] {
			http.Error(w, "unknown service", http.StatusNotFound)
			return
		}
		w.Header().Set("X-Consul-LastContact", "0")
		_, _ = w.Write([]byte(`{}`))
	default:
		http.NotFound(w, r)
	}
}

func TestRegistrarReRegistersAndDeregisters(t *testing.T) {
	fa := &fakeAgent{services: map[string]bool{}}
	srv := httptest.NewServer(fa)
	defer srv.Close()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	defer cfg.Transport.CloseIdleConnections()
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// TTL 3s: the registrar reports every second.
	r, err := Register(context.Background(), client, Registration{Service: "orders", Address: "127.0.0.1", Port: listening(t), Check: Check{TTL: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a TTL pass", func() bool { fa.mu.Lock(); defer fa.mu.Unlock(); return fa.ttlPasses > 0 })
	fa.mu.Lock()
	fa.services = map[string]bool{} // the agent restarted without state
	fa.mu.Unlock()
	waitFor(t, 30*time.Second, "re-registration", func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		return fa.registers == 2 && fa.services[r.ID()]
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if fa.services[r.ID()] {
		t.Fatal("still registered after Close")
	}
}

func TestRegisterFailsCleanly(t *testing.T) {
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = "127.0.0.1:1" // nothing listens
	defer cfg.Transport.CloseIdleConnections()
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: 1}); err == nil || !strings.Contains(err.Error(), `consul register "orders"`) {
		t.Fatalf("error = %v", err)
	}
	if _, err := Register(ctx, nil, Registration{}); !errors.Is(err, ErrInvalidRegistration) {
		t.Fatalf("nil client: %v", err)
	}
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

// stepSleep stands in for the registrar's sleep: each pause waits for the
// test to allow one round, so rounds happen exactly when the test says.
type stepSleep struct{ step chan struct{} }

func (s *stepSleep) sleep(ctx context.Context, _ time.Duration) bool {
	select {
	case <-s.step:
		return true
	case <-ctx.Done():
		return false
	}
}

func newFakeAgentClient(t *testing.T) (*fakeAgent, *api.Client) {
	t.Helper()
	fa := &fakeAgent{services: map[string]bool{}}
	srv := httptest.NewServer(fa)
	t.Cleanup(srv.Close)
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fa, client
}

// The default TTL check follows the instance's listener: passing while it
// accepts connections, critical as soon as it is gone, although the
// process (and so the registrar) lives on.
func TestRegistrarTTLFollowsListener(t *testing.T) {
	fa, client := newFakeAgentClient(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ss := &stepSleep{step: make(chan struct{})}
	r, err := Register(context.Background(), client, Registration{Service: "orders", Address: "127.0.0.1",
		Port: ln.Addr().(*net.TCPAddr).Port}, withSleep(ss.sleep))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	round := func(want string) {
		t.Helper()
		n := len(fa.reports())
		ss.step <- struct{}{}
		waitFor(t, 30*time.Second, "a TTL report", func() bool { return len(fa.reports()) > n })
		if got := fa.reports()[n]; got != want {
			t.Fatalf("report %d = %q, want %q (all: %v)", n, got, want, fa.reports())
		}
	}
	if got := fa.reports(); len(got) != 1 || got[0] != "register:passing" {
		t.Fatalf("registration reports %v, want passing", got)
	}
	round("ttl:passing")
	ln.Close() // the server died; the process did not
	round("ttl:critical")
	round("ttl:critical")
}

func TestRegistrarProbe(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	t.Run("not serving yet", func(t *testing.T) {
		fa, client := newFakeAgentClient(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ss := &stepSleep{step: make(chan struct{})}
		r, err := Register(context.Background(), client, Registration{Service: "orders", Address: "127.0.0.1", Port: dead}, withSleep(ss.sleep))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := fa.reports(); len(got) != 1 || got[0] != "register:critical" {
			t.Fatalf("registration of an instance that does not serve reports %v, want critical", got)
		}
	})
	t.Run("http", func(t *testing.T) {
		fa, client := newFakeAgentClient(t)
		ss := &stepSleep{step: make(chan struct{})}
		r, err := Register(context.Background(), client, Registration{Service: "orders", Address: "127.0.0.1", Port: port,
			Check: Check{ProbeHTTP: srv.URL + "/ready"}}, withSleep(ss.sleep))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		step := func() string {
			n := len(fa.reports())
			ss.step <- struct{}{}
			waitFor(t, 30*time.Second, "a TTL report", func() bool { return len(fa.reports()) > n })
			return fa.reports()[n]
		}
		if got := step(); got != "ttl:passing" {
			t.Fatalf("200: %s", got)
		}
		status.Store(http.StatusServiceUnavailable)
		if got := step(); got != "ttl:critical" {
			t.Fatalf("503: %s", got)
		}
		status.Store(http.StatusOK)
		if got := step(); got != "ttl:passing" {
			t.Fatalf("200 again: %s", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		fa, client := newFakeAgentClient(t)
		ss := &stepSleep{step: make(chan struct{})}
		// Nothing listens on port 1; without a probe the TTL passes.
		r, err := Register(context.Background(), client, Registration{Service: "orders", Address: "127.0.0.1", Port: 1,
			Check: Check{NoProbe: true}}, withSleep(ss.sleep))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := len(fa.reports())
		ss.step <- struct{}{}
		waitFor(t, 30*time.Second, "a TTL report", func() bool { return len(fa.reports()) > n })
		if got := fa.reports(); got[0] != "register:passing" || got[n] != "ttl:passing" {
			t.Fatalf("reports %v, want passing throughout", got)
		}
	})
}
