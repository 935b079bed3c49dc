// Command metrics shows graylane's per-version figures as Prometheus sees
// them: a gateway sends 90% of its traffic to order 1.0 and 10% to the 1.1
// canary, one of whose instances fails, and every balancer records through
// OpenTelemetry's metrics API into one meter provider that OpenTelemetry's
// Prometheus exporter serves on /metrics.
//
//	go run ./examples/metrics                 # prints the per-version series and exits
//	go run ./examples/metrics -listen :9464   # and keeps serving /metrics
//
// The services:
//
//	client -> gateway (entry; gray rule 90/10) -> order 1.0 (two instances)
//	                                           -> order 1.1 (one good, one answering 500)
//
// Wiring metrics into a balancer is one option, WithMeterProvider, and the
// service's own identity (WithIdentity) labels what its middleware serves.
// The program prints, per version, the calls the gateway made and the
// requests each order instance served with their errors, read back from
// the /metrics page, and checks that they add up to what was sent.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/rule"
)

const grayRule = `<rule><strategy-release>
  <conditions type="gray">
    <condition id="canary" version-id="stable=90;canary=10"/>
  </conditions>
  <routes>
    <route id="stable" type="version">{"order":"1.0"}</route>
    <route id="canary" type="version">{"order":"1.1"}</route>
  </routes>
</strategy-release></rule>`

// requests is how many requests the client sends through the gateway.
const requests = 200

func main() {
	listen := flag.String("listen", "", "keep serving /metrics on this address after the run")
	demo.Main("metrics", 30*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, *listen, log)
	})
}

// world is the running example: the services and the /metrics server.
type world struct {
	metricsURL string
	gateway    string
	close      func()
}

// start brings up the meter provider and its exporter, the order
// instances, the gateway and the /metrics server, all on loopback.
func start(log *zap.Logger) (*world, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	var closers []func()
	w := &world{close: func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		_ = mp.Shutdown(context.Background())
	}}
	serve := func(h http.Handler) (*net.TCPAddr, error) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(lis) }()
		closers = append(closers, func() { _ = srv.Close(); <-done })
		return lis.Addr().(*net.TCPAddr), nil
	}
	fail := func(err error) (*world, error) { w.close(); return nil, err }

	registry := discovery.NewStatic()
	var orders []discovery.Instance
	for i, v := range []string{"1.0", "1.0", "1.1", "1.1"} {
		in := discovery.Instance{ID: fmt.Sprintf("order-%d", i), Service: "order", Address: "127.0.0.1", Version: v, Zone: "zone-a"}
		b, err := balancer.New(registry, balancer.WithLogger(log), balancer.WithMeterProvider(mp),
			balancer.WithIdentity(balancer.Identity{Service: "order", ID: in.ID, Version: v}))
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { _ = b.Close() })
		broken := i == 3
		addr, err := serve(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if broken {
				http.Error(w, "out of stock service unreachable", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "order "+v)
		})))
		if err != nil {
			return fail(err)
		}
		in.Port = addr.Port
		orders = append(orders, in)
	}
	registry.Set("order", orders...)

	r, err := rule.Parse([]byte(grayRule))
	if err != nil {
		return fail(err)
	}
	gw, err := balancer.New(registry, balancer.WithLogger(log), balancer.WithEntry(true), balancer.WithRule(r),
		balancer.WithMeterProvider(mp), balancer.WithIdentity(balancer.Identity{Service: "gateway", Version: "1.0"}))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = gw.Close() })
	client := &http.Client{Transport: gw.Transport(nil)}
	closers = append(closers, client.CloseIdleConnections)
	addr, err := serve(gw.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://order/", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})))
	if err != nil {
		return fail(err)
	}
	w.gateway = "http://" + addr.String() + "/"
	maddr, err := serve(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if err != nil {
		return fail(err)
	}
	w.metricsURL = "http://" + maddr.String() + "/metrics"
	return w, nil
}

func run(ctx context.Context, out io.Writer, listen string, log *zap.Logger) error {
	w, err := start(log)
	if err != nil {
		return err
	}
	defer w.close()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	sent := map[int]int{}
	for range requests {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.gateway, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		sent[resp.StatusCode]++
	}
	series, err := scrape(ctx, client, w.metricsURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Sent %d requests through the gateway: %d answered 200, %d answered 500.\n\n", requests, sent[200], sent[500])
	fmt.Fprintln(out, "From /metrics, per version of order:")
	fmt.Fprintln(out, "  version  gateway calls  errors   served  errors")
	var calls, errs, served, serverErrs float64
	for _, v := range []string{"1.0", "1.1"} {
		c := series.sum("http_client_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="`+v+`"`)
		e := series.sum("http_client_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="`+v+`"`, `error_type="500"`)
		s := series.sum("http_server_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="`+v+`"`)
		se := series.sum("http_server_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="`+v+`"`, `error_type="500"`)
		fmt.Fprintf(out, "  %-7s  %13.0f  %6.0f  %7.0f  %6.0f\n", v, c, e, s, se)
		calls, errs, served, serverErrs = calls+c, errs+e, served+s, serverErrs+se
	}
	if calls != requests || served != requests || int(errs) != sent[500] || int(serverErrs) != sent[500] {
		return errors.New("the figures do not add up to what was sent")
	}
	fmt.Fprintln(out, "\nThe figures add up to what was sent. Example series:")
	for _, name := range []string{"http_client_request_duration_seconds_count", "http_server_request_duration_seconds_count", "graylane_client_calls_total"} {
		for _, line := range series.lines(name, `graylane_version="1.1"`) {
			fmt.Fprintln(out, "  "+line)
		}
	}
	if listen == "" {
		return nil
	}
	fmt.Fprintf(out, "\nServing %s at %s until interrupted.\n", w.metricsURL, listen)
	return serveUntil(ctx, listen, w.metricsURL)
}

// serveUntil proxies /metrics on listen until ctx ends.
func serveUntil(ctx context.Context, listen, metricsURL string) error {
	srv := &http.Server{Addr: listen, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(metricsURL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// exposition is a scraped /metrics page: sample lines by metric name.
type exposition map[string][]string

// scrape reads the Prometheus text exposition at url.
func scrape(ctx context.Context, c *http.Client, url string) (exposition, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	e := exposition{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		e[name] = append(e[name], line)
	}
	return e, sc.Err()
}

// lines returns the samples of name whose labels include every one of
// labels, sorted.
func (e exposition) lines(name string, labels ...string) []string {
	var out []string
	for _, line := range e[name] {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

// sum adds up the values of the samples lines returns.
func (e exposition) sum(name string, labels ...string) float64 {
	var total float64
	for _, line := range e.lines(name, labels...) {
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += v
		}
	}
	return total
}
