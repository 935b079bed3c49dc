package discovery_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/hashicorp/consul/api"
)

// Many libraries in one process each build their own registry on the
// process's one Consul client: they share one change feed of a few
// connections to the agent. A watch the agent refuses says why, and Stats
// feeds a gauge of the watches without an answer.
func ExampleConsul_Stats() {
	client, err := api.NewClient(api.DefaultConfig()) // one per process and agent
	if err != nil {
		panic(err)
	}
	orders := discovery.NewConsul(client)
	defer orders.Close()
	payments := discovery.NewConsul(client) // shares the feed of orders
	defer payments.Close()

	w := orders.Watch("orders")
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		if err := w.Err(); errors.Is(err, discovery.ErrAgentLimit) {
			fmt.Println("raise limits.http_max_conns_per_client on the agent:", err)
		}
	}
	st := orders.Stats()
	fmt.Printf("%d services watched, %d without an answer, %d connections to the agent\n",
		st.Services, st.Unanswered, st.Connections)
}
