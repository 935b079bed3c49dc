package balancer_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/expr"
)

func ExampleRequestValues() {
	c, err := expr.Compile("#H['user'] == 'vip' or #H['xyz'] == '2'")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest(http.MethodGet, "http://orders/list?user=vip", nil)
	fmt.Println(c.Match(balancer.RequestValues(r))) // query parameter

	r = httptest.NewRequest(http.MethodGet, "http://orders/list", nil)
	r.Header.Set("xyz", "2")
	fmt.Println(c.Match(balancer.RequestValues(r))) // header, in any case

	r.AddCookie(&http.Cookie{Name: "xyz", Value: "3"})
	fmt.Println(c.Match(balancer.RequestValues(r))) // a cookie comes before a header
	// Output:
	// true
	// true
	// false
}
