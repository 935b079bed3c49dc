// Command kafka shows the release route crossing a message queue: an
// order service on 1.1, called with the 1.1 route, publishes a Kafka
// record; the billing service consumes it and calls invoice, which runs
// 1.0 and 1.1, and its call goes to 1.1 because the record's headers
// carried the route.
//
//	go run ./examples/kafka
//
// The records are franz-go's (github.com/twmb/franz-go/pkg/kgo); the
// broker is an in-memory stand-in, so the example runs anywhere. With a
// real cluster the producer's client.Produce and the consumer's
// client.PollFetches take its place, and nothing else changes: the route
// travels in the record's headers, written and read by graylane's route
// codec through recordHeaders, the adapter below, a dozen lines.
//
//	order (1.1) --record{n-d-version: ...}--> billing --HTTP--> invoice 1.1
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
)

// recordHeaders is a Kafka record's headers as graylane's route codec
// carrier. Keys compare in any case; routing keys are written in lower
// case, as Nepxion's Java clients do.
type recordHeaders struct{ r *kgo.Record }

var _ pick.Carrier = recordHeaders{}

// Get returns the value of the first header named key.
func (c recordHeaders) Get(key string) string {
	for _, h := range c.r.Headers {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the headers named key with one of value; empty removes them.
func (c recordHeaders) Set(key, value string) {
	hs := c.r.Headers[:0]
	for _, h := range c.r.Headers {
		if !strings.EqualFold(h.Key, key) {
			hs = append(hs, h)
		}
	}
	if value != "" {
		hs = append(hs, kgo.RecordHeader{Key: strings.ToLower(key), Value: []byte(value)})
	}
	c.r.Headers = hs
}

// Keys lists the header keys.
func (c recordHeaders) Keys() []string {
	keys := make([]string, len(c.r.Headers))
	for i, h := range c.r.Headers {
		keys[i] = h.Key
	}
	return keys
}

func main() {
	demo.Main("kafka", 30*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, log)
	})
}

func run(ctx context.Context, out io.Writer, log *zap.Logger) error {
	registry := discovery.NewStatic()
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	serve := func(h http.Handler) (int, error) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(lis) }()
		closers = append(closers, func() { _ = srv.Close(); <-done })
		return lis.Addr().(*net.TCPAddr).Port, nil
	}
	// invoice runs 1.0 and 1.1; each answers its version.
	var invoices []discovery.Instance
	for _, v := range []string{"1.0", "1.1"} {
		port, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, v) }))
		if err != nil {
			return err
		}
		invoices = append(invoices, discovery.Instance{ID: "invoice-" + v, Service: "invoice", Address: "127.0.0.1", Port: port, Version: v})
	}
	registry.Set("invoice", invoices...)

	// The broker: one topic, in memory.
	topic := make(chan *kgo.Record, 16)

	// order 1.1 publishes one record per request, with the request's route.
	order, err := balancer.New(registry, balancer.WithLogger(log), balancer.WithIdentity(balancer.Identity{Service: "order", Version: "1.1"}))
	if err != nil {
		return err
	}
	closers = append(closers, func() { _ = order.Close() })
	publish := order.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &kgo.Record{Topic: "orders", Value: []byte(r.URL.Query().Get("id"))}
		balancer.InjectRoute(r.Context(), recordHeaders{rec})
		topic <- rec
	}))

	// billing consumes and calls invoice with the record's route.
	billing, err := balancer.New(registry, balancer.WithLogger(log), balancer.WithIdentity(balancer.Identity{Service: "billing", Version: "1.0"}))
	if err != nil {
		return err
	}
	closers = append(closers, func() { _ = billing.Close() })
	client := billing.Client()
	closers = append(closers, client.CloseIdleConnections)
	consume := func(rec *kgo.Record) (string, error) {
		ctx, err := billing.InboundMessage(ctx, recordHeaders{rec})
		if err != nil {
			log.Warn("bad routing header on a record", zap.Error(err))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://invoice/", nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	fmt.Fprintln(out, "request to order 1.1        record headers                      invoice version")
	failed := false
	for i, route := range []string{`{"order":"1.1","invoice":"1.1"}`, `{"order":"1.1","invoice":"1.0"}`, ""} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("/publish?id=%d", i), nil)
		if route != "" {
			req.Header.Set("N-D-Version", route)
		}
		publish.ServeHTTP(discard{}, req)
		rec := <-topic
		got, err := consume(rec)
		if err != nil {
			return err
		}
		want := "either"
		if route != "" {
			want = strings.TrimSuffix(route[strings.LastIndex(route, ":")+2:], `"}`)
		}
		ok := want == "either" || got == want
		failed = failed || !ok
		hdr := headerList(rec)
		if route == "" {
			route = "(no route)"
		}
		fmt.Fprintf(out, "%-27s %-35s %s (want %s)\n", route, hdr, got, want)
	}
	if failed {
		return errors.New("a consumer's call did not follow the route its record carried")
	}
	fmt.Fprintln(out, "\nEvery consumer call followed the route its record carried.")
	return nil
}

// headerList shows a record's headers as key=value.
func headerList(rec *kgo.Record) string {
	var parts []string
	for _, h := range rec.Headers {
		parts = append(parts, h.Key+"="+string(h.Value))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
