// Command quickstart is graylane's main demo: blue/green and gray routing
// across a gateway -> svc-a -> svc-b call chain, on the embedded in-memory
// registry (or a real Consul agent with -consul or CONSUL_HTTP_ADDR).
package main

import "fmt"

func main() {
	fmt.Println("graylane quickstart: the blue/green and gray call-chain demo is being built; nothing to route yet.")
}
