package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, "", zap.NewNop()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "The figures add up to what was sent.") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// Scraping /metrics finds the per-version series under the names and
// labels the README documents.
func TestScrapeFindsPerVersionSeries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := start(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	failed := 0
	for range 100 {
		resp, err := client.Get(w.gateway)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusInternalServerError {
			failed++
		}
	}
	e, err := scrape(ctx, client, w.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		labels []string
	}{
		{"http_client_request_duration_seconds_bucket", []string{`graylane_service="order"`, `graylane_version="1.0"`, `graylane_route_source="gray"`, `graylane_condition="canary"`, `le="0.005"`}},
		{"http_server_request_duration_seconds_bucket", []string{`graylane_service="order"`, `graylane_version="1.0"`, `graylane_route_source="header"`, `le="+Inf"`}},
		{"http_server_request_duration_seconds_count", []string{`graylane_service="gateway"`, `graylane_version="1.0"`, `graylane_route_source="gray"`}},
		{"graylane_client_calls_total", []string{`graylane_service="order"`, `graylane_outcome="success"`}},
	} {
		if len(e.lines(tt.name, tt.labels...)) == 0 {
			t.Errorf("no %s series with %v", tt.name, tt.labels)
		}
	}
	if got := e.sum("http_client_request_duration_seconds_count", `graylane_service="order"`); got != 100 {
		t.Errorf("the gateway's attempts to order add up to %v, want 100", got)
	}
	// Every failure is the broken 1.1 instance's.
	if got := e.sum("http_server_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="1.1"`, `error_type="500"`); int(got) != failed {
		t.Errorf("1.1 served %v errors, the client saw %d", got, failed)
	}
	if got := e.sum("http_server_request_duration_seconds_count", `graylane_service="order"`, `graylane_version="1.0"`, `error_type="500"`); got != 0 {
		t.Errorf("1.0 served %v errors", got)
	}
}
