package rollout

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/promtest"
)

// TestPrometheusFiguresFromRealServer: servers export graylane's metrics
// through the OpenTelemetry Prometheus exporter, a real Prometheus scrapes
// them, and the figures read back judge a 1.1 failing 5% of its requests.
func TestPrometheusFiguresFromRealServer(t *testing.T) {
	if _, err := promtest.Binary(); err != nil && testing.Short() {
		t.Skip(err)
	}
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	static := discovery.NewStatic()
	defer static.Close()
	urls := map[string]string{}
	for _, v := range []string{"1.0", "1.1"} {
		b, err := balancer.New(static, balancer.WithMeterProvider(mp),
			balancer.WithIdentity(balancer.Identity{Service: "svc-a", ID: "svc-a-" + v, Version: v}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		srv := httptest.NewServer(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Fail") != "" {
				http.Error(w, "injected", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, v)
		})))
		defer srv.Close()
		urls[v] = srv.URL
	}
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()
	prom := promtest.Start(t, strings.TrimPrefix(metrics.URL, "http://"))

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	send := func(v string, fail bool) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, urls[v]+"/", nil)
		if fail {
			req.Header.Set("X-Fail", "1")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	p, err := NewPrometheus(prom.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	total := func() float64 {
		v, err := p.scalar(t.Context(), `sum(`+ServerMetric+`_count{graylane_service="svc-a"})`, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitScraped := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for total() != want {
			if time.Now().After(deadline) {
				t.Fatalf("prometheus shows %v requests, want %v", total(), want)
			}
			time.Sleep(promtest.ScrapeInterval)
		}
	}
	// Every series (version x outcome) exists and is scraped before the
	// measured traffic: increase() counts from a series' first sample.
	send("1.0", false)
	send("1.1", false)
	send("1.1", true)
	waitScraped(3)
	for i := range 200 {
		send("1.0", false)
		send("1.1", i%20 == 0)
	}
	waitScraped(403)
	// increase() extrapolates a series by up to an interval and a half
	// beyond its first and last samples: quiet scrapes after the traffic
	// make that small against the span the series was sampled over.
	time.Sleep(16 * promtest.ScrapeInterval)

	end := time.Now()
	nw, err := p.Query(t.Context(), "svc-a", "1.1", end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old, err := p.Query(t.Context(), "svc-a", "1.0", end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// increase() extrapolates towards the window's edges, so counts come
	// back a little above what was sent.
	if nw.Requests < 190 || nw.Requests > 260 || nw.ErrorRate() < 0.03 || nw.ErrorRate() > 0.07 || nw.P99 <= 0 || nw.P99 > time.Second {
		t.Errorf("1.1: %v (%+v), want about 200 requests, 5%% failed", nw, nw)
	}
	if old.Requests < 190 || old.Requests > 260 || old.Errors != 0 {
		t.Errorf("1.0: %v, want about 200 requests, none failed", old)
	}
	t.Logf("1.1: %v; 1.0: %v", nw, old)
	if o, why := Judge(Analysis{MinRequests: 100, MaxErrorRate: 0.01}, nw, old); o != Fail {
		t.Errorf("judged %s %q, want fail", o, why)
	}
}
