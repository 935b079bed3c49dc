package rollout

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrometheusQueries checks the PromQL sent and how answers are read,
// against a server speaking Prometheus' query API.
func TestPrometheusQueries(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		q := r.Form.Get("query")
		mu.Lock()
		got = append(got, q+" @"+r.Form.Get("time"))
		mu.Unlock()
		val := ""
		switch {
		case strings.HasPrefix(q, "histogram_quantile"):
			val = `[{"metric":{},"value":[1767225600,"0.25"]}]`
		case strings.Contains(q, `error_type!=""`):
			val = `[]` // no failed request: no series
		default:
			val = `[{"metric":{},"value":[1767225600,"1234"]}]`
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, val)
	}))
	defer srv.Close()
	p, err := NewPrometheus(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	end := time.Unix(1767225600, 0)
	f, err := p.Query(t.Context(), "svc-a", "1.1", end, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if f.Requests != 1234 || f.Errors != 0 || f.P99 != 250*time.Millisecond {
		t.Errorf("figure %+v", f)
	}
	want := []string{
		`sum(increase(http_server_request_duration_seconds_count{graylane_service="svc-a",graylane_version="1.1"}[5m])) @1767225600`,
		`sum(increase(http_server_request_duration_seconds_count{graylane_service="svc-a",graylane_version="1.1",error_type!=""}[5m])) @1767225600`,
		`histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{graylane_service="svc-a",graylane_version="1.1"}[5m]))) @1767225600`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("queries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPrometheusError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
	}))
	defer srv.Close()
	p, _ := NewPrometheus(srv.URL, ClientMetric)
	if _, err := p.Query(t.Context(), "a", "1", time.Unix(0, 0), time.Minute); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("error %v", err)
	}
}
