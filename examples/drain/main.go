// Command drain shows a queue consumer that follows the release: the old
// version's consumer pauses when the rule stops sending its version traffic
// (the worry it answers: at weight 0 the old system's Kafka consumers would
// still consume) and resumes on rollback, and no message is lost or taken twice.
//
//	go run ./examples/drain        # -v to see the gates' and the balancer's logs
//
// Two instances of order-service, 1.0 (old) and 1.1 (new), consume one
// shared queue as one consumer group, each behind a drain.Gate for its own
// version. The release goes through four rules, each a version-weight for
// order-service:
//
//  1. before:    1.0=100;1.1=0    only 1.0 consumes
//  2. canary:    1.0=50;1.1=50    both consume
//  3. cut over:  1.0=0;1.1=100    1.0 pauses, only 1.1 consumes
//  4. rollback:  1.0=100;1.1=0    1.0 resumes, 1.1 pauses
//
// In each phase a producer publishes 200 messages after both consumers have
// settled. The program checks that a paused consumer takes nothing, that
// every message is handled exactly once, and exits 1 otherwise.
//
// Each gate follows a *balancer.Balancer, as in a service. The queue stands
// in for a Kafka topic, and a static rule watch for the Consul KV key
// (discovery.NewConsulRules) a service would follow.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/drain"
	"github.com/graylane/graylane/discovery"
)

const (
	service  = "order-service"
	perPhase = 200
)

func main() {
	verbose := flag.Bool("v", false, "print the gates' and the balancer's logs")
	flag.Parse()
	log := zap.NewNop()
	if *verbose {
		l, err := zap.NewDevelopment()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		log = l
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "drain:", err)
		os.Exit(1)
	}
}

type phase struct {
	name, weights string
	want          map[string]bool // version -> consuming
}

var phases = []phase{
	{"before", "1.0=100;1.1=0", map[string]bool{"1.0": true, "1.1": false}},
	{"canary", "1.0=50;1.1=50", map[string]bool{"1.0": true, "1.1": true}},
	{"cut over", "1.0=0;1.1=100", map[string]bool{"1.0": false, "1.1": true}},
	{"rollback", "1.0=100;1.1=0", map[string]bool{"1.0": true, "1.1": false}},
}

// ruleFor is the release rule of one phase, as published to the KV key.
func ruleFor(weights string) []byte {
	return []byte(`<rule><strategy><version-weight>{"` + service + `":"` + weights + `"}</version-weight></strategy></rule>`)
}

// waitRule waits until the balancer has put a rule in force.
func waitRule(ctx context.Context, b *balancer.Balancer) error {
	changed, stop := b.SubscribeRule()
	defer stop()
	for b.Rule() == nil {
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("no rule in force: %w", ctx.Err())
		}
	}
	return nil
}

// run drives the release and checks the consumers; it returns an error
// describing any message lost, duplicated or taken by a paused consumer.
func run(ctx context.Context, out io.Writer, log *zap.Logger) error {
	reg := discovery.NewStatic()
	defer reg.Close()
	rules := discovery.NewStaticRules(ruleFor(phases[0].weights))
	defer rules.Close()
	b, err := balancer.New(reg, balancer.WithRuleSource(rules), balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := waitRule(ctx, b); err != nil {
		return err
	}
	q := newQueue()
	consumers := []*consumer{
		newConsumer("1.0", b, q, log),
		newConsumer("1.1", b, q, log),
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(runCtx)
		}()
	}
	defer func() {
		stop()
		wg.Wait()
		for _, c := range consumers {
			c.gate.Close()
		}
	}()

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tversion-weight\t1.0\t1.1\t1.0 took\t1.1 took")
	var problems []error
	next := 0
	for i, ph := range phases {
		if i > 0 {
			if err := rules.Set(ruleFor(ph.weights)); err != nil {
				return err
			}
		}
		// Wait until each consumer has acted on its gate: paused or running.
		for _, c := range consumers {
			if err := c.settled(ctx, ph.want[c.version]); err != nil {
				return fmt.Errorf("phase %q: consumer %s did not settle: %w", ph.name, c.version, err)
			}
		}
		before := []int64{consumers[0].taken.Load(), consumers[1].taken.Load()}
		for range perPhase {
			q.publish(next)
			next++
		}
		if err := q.waitHandled(ctx, next); err != nil {
			return fmt.Errorf("phase %q: %w", ph.name, err)
		}
		took := []int64{consumers[0].taken.Load() - before[0], consumers[1].taken.Load() - before[1]}
		state := func(v string) string {
			if ph.want[v] {
				return "consuming"
			}
			return "paused"
		}
		fmt.Fprintf(tw, "%d. %s\t%s\t%s\t%s\t%d\t%d\n", i+1, ph.name, ph.weights, state("1.0"), state("1.1"), took[0], took[1])
		for k, c := range consumers {
			if !ph.want[c.version] && took[k] != 0 {
				problems = append(problems, fmt.Errorf("phase %q: paused consumer %s took %d messages", ph.name, c.version, took[k]))
			}
		}
	}
	_ = tw.Flush()
	lost, dup := q.check(next)
	fmt.Fprintf(out, "published %d, handled %d, lost %d, handled twice %d\n", next, q.handledCount(), lost, dup)
	if lost != 0 || dup != 0 {
		problems = append(problems, fmt.Errorf("%d messages lost, %d handled twice", lost, dup))
	}
	return errors.Join(problems...)
}

// consumer is one instance's consumer loop: it takes messages while its
// gate says the version receives traffic, and waits on the gate otherwise.
type consumer struct {
	version string
	gate    *drain.Gate
	q       *queue
	taken   atomic.Int64

	mu      sync.Mutex
	running bool          // what the loop currently does, for settled
	changed chan struct{} // closed and replaced when running changes
}

func newConsumer(version string, src drain.RuleSource, q *queue, log *zap.Logger) *consumer {
	return &consumer{
		version: version,
		gate:    drain.NewGate(service, version, src, drain.WithLogger(log)),
		q:       q,
		changed: make(chan struct{}),
	}
}

func (c *consumer) run(ctx context.Context) {
	changes, stop := c.gate.Changes()
	defer stop()
	receiving := c.gate.Receiving()
	for {
		c.setRunning(receiving)
		if !receiving {
			// Paused: nothing is taken from the queue until traffic returns.
			select {
			case v, ok := <-changes:
				if !ok {
					return
				}
				receiving = v
			case <-ctx.Done():
				return
			}
			continue
		}
		select {
		case v, ok := <-changes:
			if !ok {
				return
			}
			receiving = v
		case m := <-c.q.messages:
			// A message taken is handled and committed before the loop
			// looks at the gate again: pausing never drops one.
			c.taken.Add(1)
			c.q.handle(m)
		case <-ctx.Done():
			return
		}
	}
}

func (c *consumer) setRunning(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running != v {
		c.running = v
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// settled waits until the loop runs (or is paused) as want says.
func (c *consumer) settled(ctx context.Context, want bool) error {
	for {
		c.mu.Lock()
		running, changed := c.running, c.changed
		c.mu.Unlock()
		if running == want {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// queue stands in for a topic consumed by one consumer group: each message
// goes to exactly one consumer, which commits it by calling handle.
type queue struct {
	messages chan int

	mu      sync.Mutex
	handled map[int]int // message -> times handled
	count   int
	cond    chan struct{} // closed and replaced at every handle
}

func newQueue() *queue {
	return &queue{messages: make(chan int, 1024), handled: make(map[int]int), cond: make(chan struct{})}
}

func (q *queue) publish(m int) { q.messages <- m }

func (q *queue) handle(m int) {
	time.Sleep(50 * time.Microsecond) // the work
	q.mu.Lock()
	defer q.mu.Unlock()
	q.handled[m]++
	q.count++
	close(q.cond)
	q.cond = make(chan struct{})
}

func (q *queue) handledCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// waitHandled waits until n messages have been handled.
func (q *queue) waitHandled(ctx context.Context, n int) error {
	for {
		q.mu.Lock()
		count, cond := q.count, q.cond
		q.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-cond:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d messages handled: %w", count, n, ctx.Err())
		}
	}
}

// check counts messages 0..n-1 never handled and handled more than once.
func (q *queue) check(n int) (lost, dup int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for m := range n {
		switch q.handled[m] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	return lost, dup
}
