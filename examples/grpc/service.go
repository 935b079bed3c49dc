package main

// The example's gRPC service, written by hand so the example runs with only
// Go installed: a service descriptor as protoc-gen-go-grpc would generate
// it, and a JSON codec in place of protobuf. In a real service this file is
// your generated code; nothing in it is specific to graylane.

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

const callMethod = "/graylane.example.Chain/Call"

// CallRequest is the request of Chain.Call.
type CallRequest struct {
	Order string `json:"order"`
}

// CallReply is the answer of Chain.Call: who served each hop, and the
// forwarded user id the last hop received.
type CallReply struct {
	Chain string `json:"chain"` // "svc-a@1.1 > svc-b@1.1"
	User  string `json:"user"`
}

// chainServer is what the descriptor dispatches to.
type chainServer interface {
	Call(ctx context.Context, in *CallRequest) (*CallReply, error)
}

var chainDesc = grpc.ServiceDesc{
	ServiceName: "graylane.example.Chain",
	HandlerType: (*chainServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(CallRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(chainServer).Call(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: callMethod}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(chainServer).Call(ctx, req.(*CallRequest))
			})
		},
	}},
}

// chainClient calls Chain.Call over a connection.
type chainClient struct{ cc grpc.ClientConnInterface }

func (c chainClient) Call(ctx context.Context, in *CallRequest, opts ...grpc.CallOption) (*CallReply, error) {
	out := new(CallReply)
	if err := c.cc.Invoke(ctx, callMethod, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonCodec carries messages as JSON. Servers install it with
// grpc.ForceServerCodecV2, clients with grpc.ForceCodecV2.
type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (jsonCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return json.Unmarshal(data.Materialize(), v)
}
