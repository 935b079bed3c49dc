package grpcroute

import (
	"go.uber.org/zap"
)

// ResolverOption configures NewResolverBuilder.
type ResolverOption interface{ applyResolver(*resolverOptions) }

// BalancerOption configures NewBalancerBuilder.
type BalancerOption interface{ applyBalancer(*balancerOptions) }

// InterceptorOption configures the interceptors (NewInterceptors).
type InterceptorOption interface{ applyInterceptor(*interceptorOptions) }

// Option is an option that every constructor of the package accepts.
type Option interface {
	ResolverOption
	BalancerOption
	InterceptorOption
}

type loggerOption struct{ l *zap.Logger }

func (o loggerOption) applyResolver(r *resolverOptions) {
	if o.l != nil {
		r.log = o.l
	}
}

func (o loggerOption) applyBalancer(b *balancerOptions) {
	if o.l != nil {
		b.log = o.l
	}
}

func (o loggerOption) applyInterceptor(i *interceptorOptions) {
	if o.l != nil {
		i.log = o.l
	}
}

// WithLogger sets the logger (default zap.NewNop()). Nil keeps the default.
func WithLogger(l *zap.Logger) Option { return loggerOption{l} }

type resolverOptionFunc func(*resolverOptions)

func (f resolverOptionFunc) applyResolver(o *resolverOptions) { f(o) }

type balancerOptionFunc func(*balancerOptions)

func (f balancerOptionFunc) applyBalancer(o *balancerOptions) { f(o) }
