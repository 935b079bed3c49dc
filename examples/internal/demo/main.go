package demo

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/rule"
)

// ConsulUsage is the help text of an example's -consul flag, whose default
// is $CONSUL_HTTP_ADDR.
const ConsulUsage = "Consul agent address; empty runs on the embedded registry"

// Main is an example's main after its own flags are defined: it adds -v
// (log what the balancers do, to stderr), parses the command line, and calls
// run with a context that ends after timeout. If run fails it prints the
// error after name and exits 1.
func Main(name string, timeout time.Duration, run func(ctx context.Context, log *zap.Logger) error) {
	verbose := flag.Bool("v", false, "log what the balancers do")
	flag.Parse()
	log := zap.NewNop()
	if *verbose {
		if l, err := zap.NewDevelopment(); err == nil {
			log = l
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := run(ctx, log)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// WaitRule waits until b has a rule in force for which ok is true (any rule
// when ok is nil).
func WaitRule(ctx context.Context, b *balancer.Balancer, ok func(*rule.Rule) bool) error {
	changed, stop := b.SubscribeRule()
	defer stop()
	for {
		if r := b.Rule(); r != nil && (ok == nil || ok(r)) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("the rule was not applied: %w", ctx.Err())
		}
	}
}
