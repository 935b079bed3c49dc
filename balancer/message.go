package balancer

import (
	"context"

	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/pick"
)

// This file carries the route through message headers and notes calls that
// lost it (see the package documentation's Asynchronous hops).

// InjectRoute writes the route of ctx, and its forwarded business headers,
// onto c (a message's headers, say) as n-d-* headers, the way the
// transport writes them onto a request; routing headers c held before are
// replaced. It reports whether ctx carried a route.
func InjectRoute(ctx context.Context, c pick.Carrier) bool {
	r := routeFrom(ctx)
	if r == nil {
		pick.Inject(&Route{}, c)
		return false
	}
	pick.Inject(r, c)
	return true
}

// InboundMessage is Inbound for a message: it returns ctx carrying the
// route that the message's headers g hold (written by InjectRoute), or,
// when they hold none, the rule's decision for no request values, as for
// any inbound call. The forwarded business headers are read from g too.
func (b *Balancer) InboundMessage(ctx context.Context, g pick.Getter) (context.Context, error) {
	return b.Inbound(ctx, getterHeader{g}, nil)
}

// getterHeader is a pick.Getter as an InboundHeader, one value per key.
type getterHeader struct{ pick.Getter }

func (g getterHeader) Values(key string) []string {
	if v := g.Get(key); v != "" {
		return []string{v}
	}
	return nil
}

// noteUnrouted logs, once per service and at debug level, an outbound call
// to service that carries no route at a hop that is not an entry and
// receives routed calls: the usual sign of work that lost its request's
// context (a goroutine started with context.Background()).
func (b *Balancer) noteUnrouted(service string) {
	if b.o.entry || !b.routedIn.Load() || !b.log.Core().Enabled(zap.DebugLevel) {
		return
	}
	if _, seen := b.unrouted.LoadOrStore(service, struct{}{}); seen {
		return
	}
	b.log.Debug("call without a route at a hop that receives routed calls; "+
		"keep the request's context (context.WithoutCancel for work that outlives it)",
		zap.String("service", service))
}
