package balancer

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A Consul agent that refuses this host's connections (over its
// limits.http_max_conns_per_client) is loud: Ready fails naming the limit,
// the debug view shows it for the service, and a warning gives the remedy.
// Once connections free up, the watch is served and Ready succeeds.
func TestIntegrationAgentLimitIsReported(t *testing.T) {
	const limit = 4
	agent := consultest.StartHCL(t, "limits { http_max_conns_per_client = 4 }")
	if _, err := agent.Client().Catalog().Register(&api.CatalogRegistration{
		Node: "limit-node", Address: "127.0.0.1",
		Service: &api.AgentService{ID: "orders-1", Service: "orders", Port: 9001},
	}, nil); err != nil {
		t.Fatal(err)
	}
	// Other processes on the host hold every connection the agent allows
	// this address.
	var held []net.Conn
	for range limit {
		c, err := net.Dial("tcp", agent.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	release := func() {
		for _, c := range held {
			_ = c.Close()
		}
		held = nil
	}
	defer release()

	core, logs := observer.New(zap.WarnLevel)
	client, err := api.NewClient(agent.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewConsul(client, discovery.WithLogger(zap.New(core)), discovery.WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	defer reg.Close()
	b, err := New(reg, WithReadyWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, _, _ = b.Pick(context.Background(), "orders")

	deadline := time.Now().Add(30 * time.Second)
	var readyErr error
	for time.Now().Before(deadline) {
		// The agent answers 429 and closes; the first failure may show
		// only the close.
		if readyErr = b.Ready(context.Background()); errors.Is(readyErr, discovery.ErrAgentLimit) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(readyErr, discovery.ErrAgentLimit) || !strings.Contains(readyErr.Error(), "limits.http_max_conns_per_client") ||
		!strings.Contains(readyErr.Error(), `"orders"`) {
		t.Fatalf("Ready = %v, want the agent limit named for orders", readyErr)
	}
	t.Logf("Ready: %v", readyErr)
	st := b.Debug()
	if len(st.Services) != 1 || st.Services[0].Ready || !strings.Contains(st.Services[0].Error, "limits.http_max_conns_per_client") {
		t.Fatalf("debug view: %+v", st.Services)
	}
	warned := false
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "limits.http_max_conns_per_client") {
			if _, ok := e.ContextMap()["connections_held"]; ok {
				warned = true
			}
		}
	}
	if !warned {
		t.Fatalf("no warning with the remedy; logged: %v", logs.All())
	}
	if s := reg.Stats(); s.Unanswered != 1 || s.Failing != 1 || s.Refused == 0 {
		t.Fatalf("stats %+v, want one unanswered, failing, refused service", s)
	}

	release()
	// Every feed query recovers on its own back-off: wait until Ready, the
	// stats and the debug view all show it.
	recovered := func() bool {
		readyErr = b.Ready(context.Background())
		st := b.Debug()
		return readyErr == nil && reg.Stats().Unanswered == 0 && len(st.Services) == 1 && st.Services[0].Error == ""
	}
	for time.Now().Before(deadline) && !recovered() {
		time.Sleep(20 * time.Millisecond)
	}
	if readyErr != nil || reg.Stats().Unanswered != 0 {
		t.Fatalf("after the connections were freed: Ready = %v, stats %+v", readyErr, reg.Stats())
	}
	if st := b.Debug(); st.Services[0].Error != "" || !st.Services[0].Ready {
		t.Fatalf("debug view after recovery: %+v", st.Services[0])
	}
}
