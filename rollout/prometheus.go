package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Metric name prefixes of the per-version request durations graylane
// exports (README "Observability"): a server's served requests and a
// client's calls.
const (
	ServerMetric = "http_server_request_duration_seconds"
	ClientMetric = "http_client_request_duration_seconds"
)

// Prometheus is the production [Figures]: PromQL over a Prometheus server's
// HTTP API, on the histograms graylane's OpenTelemetry metrics export
// (labels graylane_service, graylane_version, error_type set on failure).
//
// The counts are increase() over the window, which Prometheus extrapolates
// towards the window's edges (a count comes back a few percent above the
// requests served) and which starts from a series' first sample: the
// requests a new series (a version's first failure, say) carried when it
// was first scraped are not counted. A window several scrape intervals
// long keeps both small.
type Prometheus struct {
	api    v1.API
	metric string
}

// NewPrometheus returns Figures read from the Prometheus server at address
// (e.g. "http://127.0.0.1:9090"), over metric (ServerMetric or
// ClientMetric; empty: ServerMetric).
func NewPrometheus(address, metric string) (*Prometheus, error) {
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("rollout: prometheus client: %w", err)
	}
	if metric == "" {
		metric = ServerMetric
	}
	return &Prometheus{api: v1.NewAPI(c), metric: metric}, nil
}

// Queries returns the three PromQL expressions a Query evaluates at its end
// time: requests, failed requests, p99 in seconds.
func (p *Prometheus) Queries(service, version string, window time.Duration) (requests, errs, p99 string) {
	sel := `graylane_service=` + strconv.Quote(service) + `,graylane_version=` + strconv.Quote(version)
	w := "[" + model.Duration(window).String() + "]"
	requests = `sum(increase(` + p.metric + `_count{` + sel + `}` + w + `))`
	errs = `sum(increase(` + p.metric + `_count{` + sel + `,error_type!=""}` + w + `))`
	p99 = `histogram_quantile(0.99, sum by (le) (rate(` + p.metric + `_bucket{` + sel + `}` + w + `)))`
	return requests, errs, p99
}

// Query implements [Figures].
func (p *Prometheus) Query(ctx context.Context, service, version string, end time.Time, window time.Duration) (Figure, error) {
	rq, eq, lq := p.Queries(service, version, window)
	var f Figure
	var err error
	if f.Requests, err = p.scalar(ctx, rq, end); err != nil {
		return f, err
	}
	if f.Errors, err = p.scalar(ctx, eq, end); err != nil {
		return f, err
	}
	sec, err := p.scalar(ctx, lq, end)
	if err != nil {
		return f, err
	}
	if !math.IsNaN(sec) && !math.IsInf(sec, 0) && sec > 0 {
		f.P99 = time.Duration(sec * float64(time.Second))
	}
	return f, nil
}

// scalar evaluates q at t; an empty answer (no series: nothing served) is
// 0, a NaN (a quantile of no requests) is NaN.
func (p *Prometheus) scalar(ctx context.Context, q string, t time.Time) (float64, error) {
	v, warnings, err := p.api.Query(ctx, q, t)
	if err != nil {
		return 0, fmt.Errorf("rollout: prometheus query %s: %w", q, err)
	}
	_ = warnings
	switch v := v.(type) {
	case model.Vector:
		if len(v) == 0 {
			return 0, nil
		}
		if len(v) > 1 {
			return 0, fmt.Errorf("rollout: prometheus query %s: %d series, want one", q, len(v))
		}
		return float64(v[0].Value), nil
	case *model.Scalar:
		return float64(v.Value), nil
	case nil:
		return 0, errors.New("rollout: prometheus query " + q + ": no result")
	default:
		return 0, fmt.Errorf("rollout: prometheus query %s: unexpected %s result", q, strings.ToLower(v.Type().String()))
	}
}
