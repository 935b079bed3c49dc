package grpcroute

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	"github.com/graylane/graylane/discovery"
)

// BenchmarkClientTelemetry measures what the client interceptors and the
// stats handler add to a call, without the network: a unary call and a
// stream (ended at once, as grpc.OnFinish reports it) whose invoker
// reports a pick as the picker does, and one attempt through the stats
// handler, with no provider, with metrics (OpenTelemetry SDK, manual
// reader) and with traces (SDK, no exporter).
func BenchmarkClientTelemetry(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	cc, err := grpc.NewClient("passthrough:///svc-b", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	in := &discovery.Instance{ID: "b1", Service: "svc-b", Version: "1.1", Zone: "z1"}
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		picked(ctx, in)
		return nil
	}
	streamer := func(ctx context.Context, _ *grpc.StreamDesc, _ *grpc.ClientConn, _ string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		picked(ctx, in)
		for _, o := range opts {
			if f, ok := o.(grpc.OnFinishCallOption); ok {
				f.OnFinish(nil)
			}
		}
		return nil, nil
	}
	ctx := versionRoute(b, "1.1")
	for _, c := range []struct {
		name string
		opts []InterceptorOption
	}{
		{"off", nil},
		{"metrics", []InterceptorOption{WithMeterProvider(mp)}},
		{"traces", []InterceptorOption{WithTracerProvider(tp)}},
	} {
		ics := NewInterceptors(nil, c.opts...)
		unary, stream, sh := ics.UnaryClient(), ics.StreamClient(), ics.StatsHandler()
		b.Run(c.name+"/unary", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = unary(ctx, hopCall, nil, nil, cc, invoker)
			}
		})
		b.Run(c.name+"/stream", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = stream(ctx, &hopStreamDesc, cc, hopStream, streamer)
			}
		})
		b.Run(c.name+"/attempt", func(b *testing.B) {
			b.ReportAllocs()
			info := &stats.RPCTagInfo{FullMethodName: hopCall}
			now := time.Now()
			begin := &stats.Begin{Client: true, BeginTime: now}
			end := &stats.End{Client: true, BeginTime: now, EndTime: now}
			for b.Loop() {
				actx := sh.TagRPC(ctx, info)
				picked(actx, in)
				sh.HandleRPC(actx, begin)
				sh.HandleRPC(actx, end)
			}
		})
	}
}
