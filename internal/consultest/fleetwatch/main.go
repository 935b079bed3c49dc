// Command fleetwatch is a process full of service watchers, for the fleet
// tests of package discovery: it starts -watchers watchers of the services
// in -services (watcher i watches service (offset+i) mod len), each with its
// own discovery.NewConsul, and reports on stdout, one line per event:
//
//	ready <n> <unix ns>             every watcher of the process is ready
//	err <watcher> <limit> <error>   a watcher not ready after 1 s, and why
//	n <watcher> <instances> <unix ns>  a watcher's snapshot changed
//	stats <max connections> <refused> <unanswered> <answers> <feed answers>  when stdin closes
//
// It exits when stdin closes. Tests build it with go build.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/hashicorp/consul/api"
)

func main() {
	addr := flag.String("addr", "", "the agent's HTTP address")
	services := flag.String("services", "", "comma-separated services")
	watchers := flag.Int("watchers", 1, "watchers in this process")
	offset := flag.Int("offset", 0, "the first watcher's service")
	perService := flag.Bool("per-service", false, "one blocking query per watched service")
	ownClient := flag.Bool("own-client", false, "an api.Client per watcher")
	cache := flag.Bool("cache", false, "WithAgentCache")
	flag.Parse()
	if err := run(*addr, strings.Split(*services, ","), *watchers, *offset, *perService, *ownClient, *cache); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch:", err)
		os.Exit(1)
	}
}

type out struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *out) line(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
	o.w.Flush()
}

func run(addr string, services []string, n, offset int, perService, ownClient, cache bool) error {
	newClient := func() (*api.Client, error) {
		cfg := api.DefaultConfig()
		cfg.Address = addr
		cfg.Scheme = "http"
		return api.NewClient(cfg)
	}
	shared, err := newClient()
	if err != nil {
		return err
	}
	var opts []discovery.Option
	if perService {
		opts = append(opts, discovery.WithWatchPerService())
	}
	if cache {
		opts = append(opts, discovery.WithAgentCache())
	}
	o := &out{w: bufio.NewWriter(os.Stdout)}
	regs := make([]*discovery.Consul, n)
	watches := make([]*discovery.Watch, n)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range n {
		client := shared
		if ownClient {
			if client, err = newClient(); err != nil {
				return err
			}
		}
		regs[i] = discovery.NewConsul(client, opts...)
		w := regs[i].Watch(services[(offset+i)%len(services)])
		watches[i] = w
		ch, unsubscribe := w.Subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer unsubscribe()
			for {
				select {
				case <-ch:
					o.line("n %d %d %d", i, w.Snapshot().Len(), time.Now().UnixNano())
				case <-stop:
					return
				}
			}
		}()
	}
	// Readiness, and the watchers that cannot get an answer.
	wg.Add(1)
	maxConns := 0
	var mmu sync.Mutex
	go func() {
		defer wg.Done()
		start := time.Now()
		reported := make([]bool, n)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		readyAll := false
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mmu.Lock()
			// Consuls that share a feed report it whole; others their own.
			conns := regs[0].Stats().Connections
			if perService || ownClient {
				conns = 0
				for _, r := range regs {
					conns += r.Stats().Connections
				}
			}
			maxConns = max(maxConns, conns)
			mmu.Unlock()
			if readyAll {
				continue
			}
			ready := 0
			for i, w := range watches {
				select {
				case <-w.Ready():
					ready++
					continue
				default:
				}
				if err := w.Err(); err != nil && !reported[i] && time.Since(start) > time.Second {
					reported[i] = true
					o.line("err %d %t %s", i, errors.Is(err, discovery.ErrAgentLimit), strings.ReplaceAll(err.Error(), "\n", " "))
				}
			}
			if ready == n {
				readyAll = true
				o.line("ready %d %d", n, time.Now().UnixNano())
			}
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
	wg.Wait()
	st := regs[0].Stats()
	if perService || ownClient {
		for _, r := range regs[1:] {
			s := r.Stats()
			st.Refused += s.Refused
			st.Answers += s.Answers
			st.FeedAnswers += s.FeedAnswers
			st.Unanswered += s.Unanswered
		}
	}
	mmu.Lock()
	o.line("stats %d %d %d %d %d", maxConns, st.Refused, st.Unanswered, st.Answers, st.FeedAnswers)
	mmu.Unlock()
	for _, r := range regs {
		_ = r.Close()
	}
	return nil
}
