package grpcroute

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/discovery"
)

// recordingCC is a resolver.ClientConn that records pushed states.
type recordingCC struct {
	resolver.ClientConn
	states chan resolver.State
	mu     sync.Mutex
	errs   []error
}

func newRecordingCC() *recordingCC {
	return &recordingCC{states: make(chan resolver.State, 64)}
}

func (c *recordingCC) UpdateState(s resolver.State) error {
	c.states <- s
	return nil
}

func (c *recordingCC) ReportError(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func (c *recordingCC) next(t *testing.T) resolver.State {
	t.Helper()
	select {
	case s := <-c.states:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no resolver state within 5s")
		return resolver.State{}
	}
}

func (c *recordingCC) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-c.states:
		t.Fatalf("unexpected resolver state with %d endpoints", len(s.Endpoints))
	case <-time.After(d):
	}
}

func mustTarget(t *testing.T, s string) resolver.Target {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return resolver.Target{URL: *u}
}

func endpointVersions(t *testing.T, s resolver.State) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, ep := range s.Endpoints {
		in, ok := InstanceFrom(ep)
		if !ok {
			t.Fatalf("endpoint %v carries no instance", ep)
		}
		if len(ep.Addresses) != 1 || ep.Addresses[0].Addr != in.HostPort() {
			t.Fatalf("endpoint addresses %v, want [%s]", ep.Addresses, in.HostPort())
		}
		if ep.Addresses[0].Attributes != nil {
			t.Fatalf("address %v carries attributes; instance data belongs on the endpoint", ep.Addresses[0])
		}
		out[in.ID] = in.Version
	}
	return out
}

func TestResolverPushesOnChangeOnly(t *testing.T) {
	reg := discovery.NewStatic()
	reg.Set("svc-a",
		discovery.Instance{ID: "a1", Address: "10.0.0.1", Port: 8080, Version: "1.0", Region: "r1", Zone: "z1", Env: "prod", Weight: 30},
		discovery.Instance{ID: "a2", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
	)
	b := NewResolverBuilder(reg)
	cc := newRecordingCC()
	r, err := b.Build(mustTarget(t, "consul:///svc-a"), cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	s := cc.next(t)
	if got := endpointVersions(t, s); len(got) != 2 || got["a1"] != "1.0" || got["a2"] != "1.1" {
		t.Fatalf("versions %v", got)
	}
	if len(s.Addresses) != 2 {
		t.Fatalf("Addresses %v, want 2", s.Addresses)
	}
	in, _ := InstanceFrom(s.Endpoints[0])
	if in.ID != "a1" || in.Region != "r1" || in.Zone != "z1" || in.Env != "prod" || in.Weight != 30 || in.Service != "svc-a" {
		t.Fatalf("instance %+v lost data", in)
	}

	// ResolveNow never blocks and pushes nothing by itself.
	done := make(chan struct{})
	go func() {
		for range 1000 {
			r.ResolveNow(resolver.ResolveNowOptions{})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("ResolveNow blocked")
	}
	cc.none(t, 100*time.Millisecond)

	// Same instances again: the registry publishes nothing, nor do we.
	reg.Set("svc-a", reg.Instances("svc-a")...)
	cc.none(t, 100*time.Millisecond)

	// A version change is a change.
	reg.Set("svc-a",
		discovery.Instance{ID: "a1", Address: "10.0.0.1", Port: 8080, Version: "1.0", Region: "r1", Zone: "z1", Env: "prod", Weight: 30},
		discovery.Instance{ID: "a2", Address: "10.0.0.2", Port: 8080, Version: "1.2"},
	)
	if got := endpointVersions(t, cc.next(t)); got["a2"] != "1.2" {
		t.Fatalf("versions %v, want a2 at 1.2", got)
	}

	// No instances: an empty state, so balancers fail picks.
	reg.Set("svc-a")
	if s := cc.next(t); len(s.Endpoints) != 0 {
		t.Fatalf("%d endpoints, want 0", len(s.Endpoints))
	}
}

func TestResolverWaitsForFirstAnswer(t *testing.T) {
	w := discovery.NewWatch("svc-a")
	cc := newRecordingCC()
	b := NewResolverBuilder(watchRegistry{w})
	r, err := b.Build(mustTarget(t, "consul:///svc-a"), cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cc.none(t, 50*time.Millisecond)
	w.Publish(discovery.NewSnapshot("svc-a", 1, []discovery.Instance{{ID: "x", Address: "127.0.0.1", Port: 1}}))
	if s := cc.next(t); len(s.Endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(s.Endpoints))
	}
}

func TestResolverCloseIdempotentBeforeReady(t *testing.T) {
	w := discovery.NewWatch("svc-a")
	r, err := NewResolverBuilder(watchRegistry{w}).Build(mustTarget(t, "consul:///svc-a"), newRecordingCC(), resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
}

// watchRegistry serves one hand-driven watch.
type watchRegistry struct{ w *discovery.Watch }

func (r watchRegistry) Watch(string) *discovery.Watch { return r.w }
func (r watchRegistry) Close() error                  { return nil }

func TestResolverScopes(t *testing.T) {
	local, dc1, blue := discovery.NewStatic(), discovery.NewStatic(), discovery.NewStatic()
	local.Set("svc", discovery.Instance{ID: "local", Address: "10.0.0.1", Port: 1})
	dc1.Set("svc", discovery.Instance{ID: "dc1", Address: "10.0.1.1", Port: 1})
	blue.Set("svc", discovery.Instance{ID: "blue", Address: "10.0.2.1", Port: 1})
	b := NewResolverBuilder(local, WithRegistryFor("dc1", "", dc1), WithRegistryFor("dc1", "blue", blue), WithScheme("reg"))
	if b.Scheme() != "reg" {
		t.Fatalf("scheme %q", b.Scheme())
	}
	tests := []struct {
		give string
		want string // instance ID, or "" for a build error
	}{
		{give: "reg:///svc", want: "local"},
		{give: "reg:///svc?dc=dc1", want: "dc1"},
		{give: "reg:///svc?tag=blue&dc=dc1", want: "blue"},
		{give: "reg:///svc?dc=dc2"},
		{give: "reg:///svc?tag=blue"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			cc := newRecordingCC()
			r, err := b.Build(mustTarget(t, tt.give), cc, resolver.BuildOptions{})
			if tt.want == "" {
				if !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), "no registry") {
					t.Fatalf("err %v, want ErrBadTarget naming the missing registry", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := endpointVersions(t, cc.next(t)); len(got) != 1 || got[tt.want] == "" {
				t.Fatalf("instances %v, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct {
		give string
		want string // part of the error
	}{
		{give: "consul:///", want: "no service name"},
		{give: "consul://127.0.0.1:8500/svc", want: "authority"},
		{give: "consul:///svc?x=1", want: `unknown parameter "x"`},
		{give: "consul:///svc?dc=a&dc=b", want: `"dc" given 2 times`},
		{give: "consul:///a/b", want: "'/'"},
		{give: "consul:///svc?dc=%zz", want: "query"},
		{give: "consul:svc", want: "want consul:///<service>"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, _, err := parseTarget(mustTarget(t, tt.give))
			if !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "target") {
				t.Fatalf("err %v, want ErrBadTarget containing %q", err, tt.want)
			}
		})
	}
}

func TestInstanceAttributeEquality(t *testing.T) {
	a := discovery.Instance{ID: "a", Address: "h", Port: 1, Version: "1", Meta: map[string]string{"k": "v"}}
	b := a
	b.Meta = map[string]string{"k": "v"}
	epA := WithInstance(resolver.Endpoint{}, a)
	epB := WithInstance(resolver.Endpoint{}, b)
	if !epA.Attributes.Equal(epB.Attributes) {
		t.Fatal("equal instances with distinct Meta maps compare unequal")
	}
	b.Meta = map[string]string{"k": "w"}
	if WithInstance(resolver.Endpoint{}, b).Attributes.Equal(epA.Attributes) {
		t.Fatal("different Meta compares equal")
	}
	c := a
	c.Version = "2"
	if WithInstance(resolver.Endpoint{}, c).Attributes.Equal(epA.Attributes) {
		t.Fatal("different version compares equal")
	}
	if _, ok := InstanceFrom(resolver.Endpoint{}); ok {
		t.Fatal("InstanceFrom found an instance on a bare endpoint")
	}
}
