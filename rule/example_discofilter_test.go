package rule_test

import (
	"fmt"

	"github.com/graylane/graylane/rule"
)

// The <discovery> section's host and region filters, as the example
// service's rule.xml of Nepxion Discovery writes them, resolved for one
// caller and provider: the balancer applies the result to every pick.
func ExampleDiscovery_RegionsFor() {
	r, err := rule.Parse([]byte(`<rule><discovery>
  <blacklist filter-value="10.10;11.11">
    <service service-name="b" filter-value="172.16"/>
  </blacklist>
  <region>
    <service consumer-service-name="a" provider-service-name="b" consumer-region-value="dev" provider-region-value="dev"/>
    <service consumer-service-name="a" provider-service-name="b" consumer-region-value="qa" provider-region-value="qa"/>
  </region>
</discovery></rule>`))
	if err != nil {
		panic(err)
	}
	hosts, whitelist := r.Discovery.HostsFor("b")
	fmt.Printf("b hides hosts starting with %s (whitelist %v)\n", hosts, whitelist)
	fmt.Printf("a in qa may call b in %q\n", r.Discovery.RegionsFor("a", "qa", "b"))
	fmt.Printf("a in prod may call b in %q (none)\n", r.Discovery.RegionsFor("a", "prod", "b"))
	fmt.Printf("c in prod may call b in %q (any)\n", r.Discovery.RegionsFor("c", "prod", "b"))
	// Output:
	// b hides hosts starting with 10.10;11.11;172.16 (whitelist false)
	// a in qa may call b in "qa"
	// a in prod may call b in ";" (none)
	// c in prod may call b in "" (any)
}
