package balancer_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// headers is a message's headers as a route carrier (pick.Carrier).
type headers map[string]string

func (h headers) Get(k string) string { return h[strings.ToLower(k)] }

func (h headers) Set(k, v string) {
	if v == "" {
		delete(h, strings.ToLower(k))
		return
	}
	h[strings.ToLower(k)] = v
}

func (h headers) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// A producer writes the route of its request onto a message's headers; the
// consumer continues it, so its own calls follow the producer's route.
func ExampleInjectRoute() {
	route := balancer.Route{}.With(rule.TypeVersion, rule.PlainValue(`{"billing":"1.1"}`))
	msg := headers{"trace-id": "t1"}
	balancer.InjectRoute(balancer.WithRoute(context.Background(), route), msg)
	fmt.Println(msg.Keys(), msg["n-d-version"])

	consumer, err := balancer.New(discovery.NewStatic())
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	ctx, _ := consumer.InboundMessage(context.Background(), msg)
	r, _ := balancer.RouteFrom(ctx)
	fmt.Println(r.String(), r.Origin.Source)
	// Output:
	// [n-d-version trace-id] {"billing":"1.1"}
	// n-d-version={"billing":"1.1"} header
}

// With a meter provider, every attempt is recorded under the version of
// the instance it went to.
func ExampleWithMeterProvider() {
	var instances []discovery.Instance
	for _, v := range []string{"1.0", "1.1"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, v) }))
		defer srv.Close()
		addr := srv.Listener.Addr().(*net.TCPAddr)
		instances = append(instances, discovery.Instance{ID: "svc-b-" + v, Service: "svc-b", Address: addr.IP.String(), Port: addr.Port, Version: v})
	}
	reg := discovery.NewStatic()
	reg.Set("svc-b", instances...)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	b, err := balancer.New(reg, balancer.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	defer b.Close()
	client := b.Client()
	defer client.CloseIdleConnections()
	for i := range 4 {
		req, _ := http.NewRequest(http.MethodGet, "http://svc-b/", nil)
		if i == 0 {
			req.Header.Set("N-D-Version", "1.1")
		}
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	perVersion := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != balancer.MetricClientDuration {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				v, _ := dp.Attributes.Value(balancer.AttrVersion)
				src, _ := dp.Attributes.Value(balancer.AttrRouteSource)
				perVersion[v.AsString()+" "+src.AsString()] += dp.Count
			}
		}
	}
	fmt.Println(perVersion["1.1 header"], "routed to 1.1;", perVersion["1.0 none"]+perVersion["1.1 none"], "unrouted")
	// Output: 1 routed to 1.1; 3 unrouted
}
