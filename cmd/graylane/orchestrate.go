package main

import (
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	orch "github.com/graylane/graylane/internal/orchestrate"
)

// runOrchestrate keeps the rule at each -key rendered from its spec
// (graylane/spec/KEY) and the live catalog until interrupted. Several
// copies may run: one per key is active at a time, through a Consul
// session lock at graylane/lock/KEY, held with a session tied to a TTL
// check of an instance of graylane-orchestrate the process registers and
// feeds (deregistered when it stops).
func runOrchestrate(e *env, args []string) int {
	fs := newFlags("orchestrate", "-key KEY [-key KEY]... [-consul ADDR] [-check-ttl D] [-session-ttl D] [-hold D]", e.stderr)
	var keys listFlag
	fs.Var(&keys, "key", "a rule `KEY` to keep rendered from its spec at graylane/spec/KEY (repeatable)")
	checkTTL := fs.Duration("check-ttl", orch.DefaultCheckTTL, "TTL of the health check the lock session depends on: a dead or stalled orchestrator's lock is freed this long after its last feed (1s up to -session-ttl)")
	ttl := fs.Duration("session-ttl", orch.DefaultSessionTTL, "TTL of the lock session, a backstop behind -check-ttl: freed 1-2 TTLs after its last renewal (10s to 24h)")
	hold := fs.Duration("hold", orch.DefaultExpansionHold, "how long a version missing from the catalog stays in the rendering (negative: none)")
	debug := fs.Bool("debug", false, "log at debug level")
	cf := addConsulFlags(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(keys) == 0 || len(pos) > 0 {
		e.errorf("orchestrate", "want one or more -key KEY and no other arguments")
		fs.Usage()
		return exitUsage
	}
	cl, where, err := cf.client()
	if err != nil {
		e.errorf("orchestrate", "%v", err)
		return exitFailed
	}
	rctx, cancel := cf.context()
	err = reachable(rctx, cl, where)
	cancel()
	if err != nil {
		e.errorf("orchestrate", "%v", err)
		return exitFailed
	}
	level := zapcore.InfoLevel
	if *debug {
		level = zapcore.DebugLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(e.stderr), level))
	defer func() { _ = log.Sync() }()

	var running []*orch.Orchestrator
	for _, k := range keys {
		o, err := orch.New(cl, k, orch.WithLogger(log), orch.WithSessionTTL(*ttl), orch.WithCheckTTL(*checkTTL), orch.WithExpansionHold(*hold))
		if err != nil {
			e.errorf("orchestrate", "%v", err)
			return exitUsage
		}
		running = append(running, o)
	}
	ctx := e.context()
	log.Info("orchestrate: started", zap.String("consul", where), zap.Strings("keys", keys), zap.Duration("check_ttl", *checkTTL), zap.Duration("session_ttl", *ttl))
	var wg sync.WaitGroup
	for _, o := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = o.Run(ctx)
		}()
	}
	wg.Wait()
	log.Info("orchestrate: stopped; locks released")
	return exitOK
}
