package pick_test

import (
	"fmt"
	"net/http"

	"github.com/graylane/graylane/balancer/pick"
)

// headerCarrier is http.Header as a carrier, for the example.
type headerCarrier http.Header

func (h headerCarrier) Get(k string) string { return http.Header(h).Get(k) }
func (h headerCarrier) Set(k, v string) {
	if v == "" {
		http.Header(h).Del(k)
		return
	}
	http.Header(h).Set(k, v)
}
func (h headerCarrier) Keys() []string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	return ks
}

// A middle hop forwards every n-d-* header it received, except the
// n-d-service-* identity headers, which carry its own identity.
func ExampleIdentityHeaders_Inject() {
	in := http.Header{}
	in.Set("n-d-version", "1.1")
	in.Set("n-d-region-failover", "qa") // forwarded, whether a route type reads it or not
	in.Set("n-d-service-id", "gateway") // the caller's identity: replaced

	route, _, _ := pick.Extract(headerCarrier(in))
	self := pick.Identity{Service: "svc-b", Address: "10.0.0.2:8080", Version: "1.0"}
	headers := self.Headers() // once per process

	out := http.Header{}
	pick.Inject(&route, headerCarrier(out))
	headers.Inject(headerCarrier(out))
	for _, k := range []string{"n-d-version", "n-d-region-failover", "n-d-service-id", "n-d-service-version", "n-d-service-zone"} {
		fmt.Printf("%s: %q\n", k, out.Get(k))
	}
	// Output:
	// n-d-version: "1.1"
	// n-d-region-failover: "qa"
	// n-d-service-id: "svc-b"
	// n-d-service-version: "1.0"
	// n-d-service-zone: ""
}
