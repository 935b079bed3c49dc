package grpcroute

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
)

// The test service: graylane.test.Hop with a unary Call and a
// server-streaming Stream, carrying raw bytes with rawCodec (there is no
// protoc here, and no generated code is needed). Each node answers with
// its own name, version and ID, followed by its downstream's answer, so a
// test sees which instance served every hop of a chain.

const (
	hopCall   = "/graylane.test.Hop/Call"
	hopStream = "/graylane.test.Hop/Stream"
)

// rawCodec marshals *[]byte messages as themselves.
type rawCodec struct{}

func (rawCodec) Name() string { return "graylane-test-raw" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}

// hopServer is what the service descriptor dispatches to.
type hopServer interface {
	call(ctx context.Context) (string, error)
}

var hopDesc = grpc.ServiceDesc{
	ServiceName: "graylane.test.Hop",
	HandlerType: (*hopServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, _ any) (any, error) {
				s, err := srv.(hopServer).call(ctx)
				if err != nil {
					return nil, err
				}
				out := []byte(s)
				return &out, nil
			}
			if interceptor == nil {
				return handler(ctx, &in)
			}
			return interceptor(ctx, &in, &grpc.UnaryServerInfo{Server: srv, FullMethod: hopCall}, handler)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			s, err := srv.(hopServer).call(ss.Context())
			if err != nil {
				return err
			}
			out := []byte(s)
			return ss.SendMsg(&out)
		},
	}},
}

var hopStreamDesc = grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}

// hopNode is one instance of a test service.
type hopNode struct {
	name, version, id string
	echo              string // inbound metadata key whose value the node reports
	next              func(ctx context.Context) (string, error)
}

func (n *hopNode) call(ctx context.Context) (string, error) {
	s := n.name + "@" + n.version + "#" + n.id
	if n.echo != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		s += "[" + n.echo + "=" + strings.Join(md.Get(n.echo), ",") + "]"
	}
	if n.next == nil {
		return s, nil
	}
	rest, err := n.next(ctx)
	if err != nil {
		return "", err
	}
	return s + ">" + rest, nil
}

// serveHop starts a gRPC server for node (a *hopNode, or another
// hopServer) on a loopback port.
func serveHop(t testing.TB, node hopServer, opts ...grpc.ServerOption) (*grpc.Server, int) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append([]grpc.ServerOption{grpc.ForceServerCodecV2(rawCodec{})}, opts...)...)
	srv.RegisterService(&hopDesc, node)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().(*net.TCPAddr).Port
}

// callHop makes a unary Call on conn.
func callHop(ctx context.Context, conn grpc.ClientConnInterface) (string, error) {
	in, out := []byte("hop"), []byte(nil)
	if err := conn.Invoke(ctx, hopCall, &in, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
		return "", err
	}
	return string(out), nil
}

// streamHop opens a Stream on conn and reads its one answer.
func streamHop(ctx context.Context, conn grpc.ClientConnInterface) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &hopStreamDesc, hopStream, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return "", err
	}
	in := []byte("hop")
	if err := st.SendMsg(&in); err != nil {
		return "", err
	}
	if err := st.CloseSend(); err != nil {
		return "", err
	}
	var out []byte
	if err := st.RecvMsg(&out); err != nil {
		return "", err
	}
	if err := st.RecvMsg(&out); err != io.EOF {
		return "", fmt.Errorf("stream: want EOF after one message, got %v", err)
	}
	return string(out), nil
}

// dialService dials a service through the resolver builder rb and the
// graylane policy, with the interceptors ics.
func dialService(t testing.TB, rb *ResolverBuilder, target string, ics *Interceptors) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(DefaultServiceConfig),
	}
	if ics != nil {
		opts = append(opts, ics.DialOptions()...)
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// incoming returns the first value of key in ctx's incoming metadata.
func incoming(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if vs := md.Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// withOutgoing returns ctx with kv appended to its outgoing metadata.
func withOutgoing(ctx context.Context, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// dialDirect dials a loopback port without discovery.
func dialDirect(t testing.TB, port int) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
