package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/rule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, zap.NewNop()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`n-d-version={"order":"1.1","invoice":"1.1"} 1.1 (want 1.1)`,
		`n-d-version={"order":"1.1","invoice":"1.0"} 1.0 (want 1.0)`,
		"Every consumer call followed the route its record carried.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The adapter round-trips a route through a record's headers, leaves
// other headers alone, and replaces routing headers in any case.
func TestRecordHeaders(t *testing.T) {
	rec := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t1")}, {Key: "N-D-Version", Value: []byte("9.9")}}}
	want := balancer.Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")).With(rule.TypeRegion, rule.PlainValue("qa"))
	balancer.InjectRoute(balancer.WithRoute(context.Background(), want), recordHeaders{rec})
	if got := headerList(rec); got != "trace-id=t1 n-d-version=1.1 n-d-region=qa" {
		t.Fatalf("headers %s", got)
	}
	got, ok, err := pick.Extract(recordHeaders{rec})
	if err != nil || !ok || got.String() != want.String() {
		t.Fatalf("read back %s, %v, %v", got.String(), ok, err)
	}
}
