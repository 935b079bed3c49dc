package discovery

import (
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// The shared change feed.
//
// A Consul agent accepts a limited number of HTTP connections per client
// address (limits.http_max_conns_per_client, 200 by default), shared by
// every process on the host, and a blocking query holds one connection for
// as long as it waits. A blocking query per watched service therefore runs
// a busy host out of connections. Instead, every NewConsul of a process
// that uses the same *api.Client and the same query options shares one
// feed, which holds at most feedConns requests to the agent at any time,
// whatever the number of watched services:
//
//   - a blocking query per failing state, /v1/health/state/critical and
//     /v1/health/state/warning. The agent wakes such a query only when a
//     check enters, leaves or changes in that state, and its body, small
//     while all is well, says which watched service's set of failing
//     checks changed: exactly the services whose set of passing instances
//     may have changed without a service write, and only those are read.
//     The queries carry no filter (a filter costs the agent a parse and an
//     evaluation per check on every answer): the watched services and
//     their nodes are picked out here;
//   - a blocking query over /v1/catalog/services, whose index moves with
//     every write of a service definition (registrations,
//     deregistrations, new metadata). A move that the check feed explains
//     (its body holds a failing check written at that index, as when an
//     instance registers with its check critical until the first probe)
//     is handled there; any other is a change the check feed cannot place,
//     and every watched service is read again;
//   - feedReaders readers that read changed services from
//     /v1/health/service/<name>?passing. A service known to have changed is
//     read as a blocking query at its last index, which the agent answers
//     at once from its streaming view or cache when those are on. A
//     service is first read once every feed query has answered (any later
//     change then moves one of them), is read by one reader at a time,
//     and is read again whenever a feed query answers after a failure.
const (
	feedReaders  = 3
	feedConns    = len(feedStates) + 1 + feedReaders
	feedReadWait = 2 * time.Second
)

// feedKey identifies what a feed reads: watches agree on it or do not share.
type feedKey struct {
	client     *api.Client
	datacenter string
	tag        string
	token      string
	stale      bool
	agentCache bool
	waitTime   time.Duration
	keys       Keys
}

// feeds holds the process's live feeds. A feed lives while a Consul uses
// it: the last Close stops it.
var feeds = struct {
	mu sync.Mutex
	m  map[feedKey]*feed
}{m: make(map[feedKey]*feed)}

// read modes of a queued service
const (
	readNone     = iota
	readAtOnce   // non-blocking read: first read, or a change the feed cannot place
	readBlocking // blocking read at the last index: the service is known to have changed
)

type feed struct {
	key    feedKey
	client *api.Client
	opts   options
	log    *zap.Logger
	refs   int // guarded by feeds.mu

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	open    atomic.Int64  // requests open to the agent
	refused atomic.Uint64 // 429 answers
	feedN   atomic.Uint64 // answers of the check and service feeds
	readN   atomic.Uint64 // answers of service reads

	mu          sync.Mutex
	services    map[string]*feedService
	nodes       map[string]struct{} // nodes that run watched instances
	nodesGen    uint64              // bumped when nodes grows
	states      [2]stateBody        // the failing checks: critical, warning
	checksIdx   uint64
	bodyIdx     map[uint64]struct{} // ModifyIndex of the failing checks
	nodeFP      uint64
	nodeFPKnown bool
	nodeFPGen   uint64
	servicesIdx uint64
	servicesKn  bool // the service feed has answered
	queue       []string
	wake        chan struct{}              // capacity 1: the queue has work
	feedErrs    [len(feedStates) + 1]error // per feed query: the states', then the services'
	limitWarned bool
}

// feedStates are the check states the check feed follows: every state
// that keeps an instance out of ?passing.
var feedStates = [2]string{api.HealthCritical, api.HealthWarning}

// stateBody is the last answer of the check feed for one state.
type stateBody struct {
	known  bool
	index  uint64
	checks api.HealthChecks
}

type feedService struct {
	name     string
	watches  map[*Watch]struct{}
	inFeed   bool // its fingerprint in the check feed is known
	fp       uint64
	queued   int
	answered bool
	reading  bool      // a reader reads it now: a read queued meanwhile waits for it
	snap     *Snapshot // the last answer
	index    uint64
	nodes    []string
	err      error
	failures int
	retry    *time.Timer
	reported map[string]struct{}
}

func feedKeyOf(client *api.Client, o *options) feedKey {
	return feedKey{
		client: client, datacenter: o.datacenter, tag: o.tag, token: o.token,
		stale: o.stale, agentCache: o.agentCache, waitTime: o.waitTime, keys: o.keys,
	}
}

// acquireFeed returns the process's feed for client and o, starting it if
// needed. Each acquire is matched by a release.
func acquireFeed(client *api.Client, o options) *feed {
	key := feedKeyOf(client, &o)
	feeds.mu.Lock()
	defer feeds.mu.Unlock()
	if f, ok := feeds.m[key]; ok {
		f.refs++
		return f
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{
		key: key, client: client, opts: o, log: o.log, refs: 1,
		ctx: ctx, cancel: cancel,
		services: make(map[string]*feedService),
		nodes:    make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
	}
	feeds.m[key] = f
	f.wg.Add(len(feedStates) + 1 + feedReaders)
	for i := range feedStates {
		go f.runChecks(i)
	}
	go f.runServices()
	for range feedReaders {
		go f.reader()
	}
	return f
}

// release drops one reference; the last stops the feed and waits for it.
func (f *feed) release() {
	feeds.mu.Lock()
	f.refs--
	last := f.refs == 0
	if last {
		delete(feeds.m, f.key)
	}
	feeds.mu.Unlock()
	if !last {
		return
	}
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	for _, s := range f.services {
		if s.retry != nil {
			s.retry.Stop()
		}
	}
	f.mu.Unlock()
}

// add starts following w's service.
func (f *feed) add(w *Watch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := w.Service()
	if s, ok := f.services[name]; ok {
		s.watches[w] = struct{}{}
		if s.snap != nil {
			// A later watcher of a followed service starts from the
			// last answer.
			w.Publish(s.snap)
		}
		if err := f.errLocked(s); err != nil {
			w.Fail(err)
		}
		return
	}
	s := &feedService{name: name, watches: map[*Watch]struct{}{w: {}}, reported: map[string]struct{}{}}
	f.services[name] = s
	if err := f.feedErrLocked(); err != nil {
		w.Fail(err)
	}
	if f.readyLocked() {
		// Every feed query has answered: any later change moves one of
		// them, so the service's first read can go now.
		fps, _, _ := checkFingerprints(f.unionLocked(), nil)
		s.inFeed, s.fp = true, fps[name]
		f.enqueueLocked(s, readAtOnce)
	}
}

// readyLocked reports whether the check feed and the service feed have
// all answered. A service is first read only then: a read made before the
// service feed's first answer could miss a write that this answer already
// holds, and a first answer is a baseline, never a change.
func (f *feed) readyLocked() bool {
	return f.states[0].known && f.states[1].known && f.servicesKn
}

// startLocked queues the first read of every service not read yet; the
// feed is ready.
func (f *feed) startLocked() {
	var fps map[string]uint64
	for _, s := range f.services {
		if s.inFeed {
			continue
		}
		if fps == nil {
			fps, _, _ = checkFingerprints(f.unionLocked(), nil)
		}
		s.inFeed, s.fp = true, fps[s.name]
		f.enqueueLocked(s, readAtOnce)
	}
}

// unionLocked returns the failing checks of every followed state.
func (f *feed) unionLocked() api.HealthChecks {
	var all api.HealthChecks
	for _, st := range f.states {
		all = append(all, st.checks...)
	}
	return all
}

// remove stops following w; a service nobody watches leaves the filter.
func (f *feed) remove(w *Watch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[w.Service()]
	if !ok {
		return
	}
	delete(s.watches, w)
	if len(s.watches) > 0 {
		return
	}
	if s.retry != nil {
		s.retry.Stop()
	}
	delete(f.services, s.name)
}

// do runs one request, counting it as an open connection.
func (f *feed) do(fn func() error) error {
	f.open.Add(1)
	defer f.open.Add(-1)
	return fn()
}

// classify turns a 429 into an error naming the agent's limit, and warns
// once per streak of refusals with the remedy.
//
// An agent over its limit answers 429 and closes the connection, and a
// client often sees only the close; so once a 429 was seen, failures
// without an HTTP status count as refusals too, until a request succeeds.
func (f *feed) classify(err error) error {
	if !isStatus(err, 429) {
		var se api.StatusError
		f.mu.Lock()
		refusing := f.limitWarned
		f.mu.Unlock()
		if !refusing || errors.As(err, &se) || errors.Is(err, context.Canceled) {
			return err
		}
	}
	f.refused.Add(1)
	held := int(f.open.Load())
	le := &limitError{held: held, err: err}
	f.mu.Lock()
	warn := !f.limitWarned
	f.limitWarned = true
	unanswered := 0
	for _, s := range f.services {
		if !s.answered {
			unanswered++
		}
	}
	f.mu.Unlock()
	if warn {
		f.log.Warn("consul agent refuses this host's connections: raise limits.http_max_conns_per_client on the agent (200 by default, shared by every process on the host)",
			zap.String("agent_setting", "limits.http_max_conns_per_client"),
			zap.Int("connections_held", held), zap.Int("connections_max", feedConns),
			zap.Int("watches_unanswered", unanswered), zap.Error(err))
	}
	return le
}

// runChecks runs the check feed of one state: a blocking query over
// /v1/health/state/<state>, which the agent wakes only when a check enters,
// leaves or changes in that state, with no filter to evaluate: the
// watched services are picked out here.
func (f *feed) runChecks(i int) {
	defer f.wg.Done()
	f.opts.runBlocking(f.ctx, "health "+feedStates[i], f.opts.queryOptions(false), func(q *api.QueryOptions) (uint64, error) {
		idx, err := f.readChecks(i, q, false)
		if err != nil && f.ctx.Err() == nil {
			f.setFeedErr(i, f.classify(err))
		}
		return idx, err
	})
}

// readChecks reads the check feed of one state once and queues the
// services whose failing checks changed.
func (f *feed) readChecks(i int, q *api.QueryOptions, inline bool) (uint64, error) {
	var checks api.HealthChecks
	var meta *api.QueryMeta
	err := f.do(func() (err error) {
		checks, meta, err = f.client.Health().State(feedStates[i], q)
		return err
	})
	if err != nil {
		return 0, err
	}
	f.feedN.Add(1)
	f.checksAnswer(i, meta.LastIndex, checks, inline)
	return meta.LastIndex, nil
}

// checkFingerprints hashes each service's checks (and the node checks)
// with their modify indexes: any change to them changes the hash.
// Node checks count only for the nodes in nodes (all of them when nil).
func checkFingerprints(checks api.HealthChecks, nodes map[string]struct{}) (map[string]uint64, uint64, map[uint64]struct{}) {
	byService := make(map[string][]string)
	var node []string
	idx := make(map[uint64]struct{}, len(checks))
	for _, c := range checks {
		if c == nil {
			continue
		}
		idx[c.ModifyIndex] = struct{}{}
		k := c.Node + "\x00" + c.CheckID + "\x00" + c.ServiceID + "\x00" + c.Status + "\x00" + strconv.FormatUint(c.ModifyIndex, 10)
		if c.ServiceName == "" {
			if _, ok := nodes[c.Node]; ok || nodes == nil {
				node = append(node, k)
			}
		} else {
			byService[c.ServiceName] = append(byService[c.ServiceName], k)
		}
	}
	hash := func(keys []string) uint64 {
		sort.Strings(keys)
		h := fnv.New64a()
		for _, k := range keys {
			h.Write([]byte(k))
			h.Write([]byte{0xff})
		}
		return h.Sum64()
	}
	fps := make(map[string]uint64, len(byService))
	for n, keys := range byService {
		fps[n] = hash(keys)
	}
	return fps, hash(node), idx
}

// An inline read (made for the service feed) older than the state's last
// answer is dropped: the blocking query overtook it.
func (f *feed) checksAnswer(i int, index uint64, checks api.HealthChecks, inline bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inline && index < f.states[i].index {
		return
	}
	f.limitWarned = false
	// The first answer after a failure, or an index that went backwards,
	// may come from an agent that restarted: the indexes of earlier
	// answers mean nothing now, and whatever changed while the query
	// failed left no trace in them. A dev agent restarted empty climbs
	// back to indexes like the old ones within a few writes, so an index
	// that did not go backwards proves nothing. Read every service at
	// once.
	reset := index < f.states[i].index || f.feedErrs[i] != nil
	if f.feedErrs[i] != nil {
		f.feedErrs[i] = nil
		for _, s := range f.services {
			f.updateErrLocked(s)
		}
	}
	f.states[i] = stateBody{known: true, index: index, checks: checks}
	if !f.states[0].known || !f.states[1].known {
		return
	}
	f.checksIdx = max(f.states[0].index, f.states[1].index)
	fps, nodeFP, bodyIdx := checkFingerprints(f.unionLocked(), f.nodes)
	f.bodyIdx = bodyIdx
	// Node checks compare only over the same nodes: a node joining the
	// set changes the hash without any change in the catalog.
	nodeChanged := f.nodeFPKnown && f.nodeFPGen == f.nodesGen && nodeFP != f.nodeFP
	f.nodeFP, f.nodeFPKnown, f.nodeFPGen = nodeFP, true, f.nodesGen
	for _, s := range f.services {
		fp := fps[s.name]
		switch {
		case !s.inFeed:
			// The first answer since the service was added: read it now,
			// after this answer, so that any later change moves the feed
			// (once the service feed has answered too).
			if f.servicesKn {
				s.inFeed, s.fp = true, fp
				f.enqueueLocked(s, readAtOnce)
			}
		case fp != s.fp:
			s.fp = fp
			if s.answered && !reset {
				f.enqueueLocked(s, readBlocking)
			} else {
				f.enqueueLocked(s, readAtOnce)
			}
		case (nodeChanged || reset) && s.started():
			f.enqueueLocked(s, readAtOnce)
		}
		f.updateErrLocked(s)
	}
}

// runServices follows the catalog's service index for changes to service
// definitions that leave the checks alone.
func (f *feed) runServices() {
	defer f.wg.Done()
	q := f.opts.queryOptions(false)
	f.opts.runBlocking(f.ctx, "catalog services", q, func(q *api.QueryOptions) (uint64, error) {
		var meta *api.QueryMeta
		err := f.do(func() (err error) {
			_, meta, err = f.client.Catalog().Services(q)
			return err
		})
		if err != nil {
			if f.ctx.Err() == nil {
				f.setFeedErr(len(feedStates), f.classify(err))
			}
			return 0, err
		}
		f.feedN.Add(1)
		recovered := f.setFeedErr(len(feedStates), nil)
		f.servicesAnswer(meta.LastIndex, recovered)
		return meta.LastIndex, nil
	})
}

// explainedLocked reports whether the check feed's body holds a check
// written at index: the write that moved the service index also changed a
// watched service's non-passing checks, and that service is read. Only
// then: a registration with a passing check changes no non-passing check.
func (f *feed) explainedLocked(index uint64) bool {
	_, ok := f.bodyIdx[index]
	return ok
}

// servicesAnswer handles an answer of the service feed. recovered reports
// the first answer after a failure: the agent may have restarted while the
// feed failed, so neither an equal index nor one the check feed explains
// shows that nothing changed, and every answered service is read again.
func (f *feed) servicesAnswer(index uint64, recovered bool) {
	f.mu.Lock()
	prev := f.servicesIdx
	f.servicesIdx = index
	if !f.servicesKn {
		f.servicesKn = true
		if f.readyLocked() {
			f.startLocked()
		}
	}
	if recovered && prev != 0 {
		f.rereadLocked()
		f.mu.Unlock()
		return
	}
	if prev == 0 || index == prev || f.explainedLocked(index) {
		f.mu.Unlock()
		return
	}
	behind := f.checksIdx < index && len(f.services) > 0
	f.mu.Unlock()
	if behind {
		// The check feed has not seen this index yet: read it once now
		// rather than read every service.
		for i := range feedStates {
			q := f.opts.queryOptions(false)
			rctx, cancel := context.WithTimeout(f.ctx, f.opts.requestTimeout())
			_, err := f.readChecks(i, q.WithContext(rctx), true)
			cancel()
			if err != nil && f.ctx.Err() == nil {
				f.log.Debug("consul check feed: read failed", zap.Error(err))
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.explainedLocked(index) {
		return
	}
	f.rereadLocked()
}

// rereadLocked queues every answered service for a read at once, and
// every service whose first read is under way: that read may have been
// answered before the change.
func (f *feed) rereadLocked() {
	for _, s := range f.services {
		if s.started() {
			f.enqueueLocked(s, readAtOnce)
		}
	}
}

// started reports whether the service was read or is being read.
func (s *feedService) started() bool { return s.answered || s.reading }

func (f *feed) enqueueLocked(s *feedService, mode int) {
	if s.queued == readNone {
		f.queue = append(f.queue, s.name)
	}
	// A read at once answers for a blocking one too.
	if s.queued == readNone || mode == readAtOnce {
		s.queued = mode
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// reader reads queued services until the feed stops. A service is read by
// one reader at a time: a read queued while another is under way waits
// for it and goes after it, so that an answer never overwrites a later
// one and a change made during a read is read again.
func (f *feed) reader() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		var s *feedService
		mode := readNone
		for len(f.queue) > 0 && s == nil {
			name := f.queue[0]
			f.queue = f.queue[1:]
			if cand, ok := f.services[name]; ok && cand.queued != readNone && !cand.reading {
				s, mode = cand, cand.queued
				s.queued = readNone
				s.reading = true
			}
		}
		more := len(f.queue) > 0
		f.mu.Unlock()
		if more {
			select {
			case f.wake <- struct{}{}:
			default:
			}
		}
		if s == nil {
			select {
			case <-f.wake:
				continue
			case <-f.ctx.Done():
				return
			}
		}
		f.read(s, mode)
		f.mu.Lock()
		s.reading = false
		if s.queued != readNone && f.services[s.name] == s {
			// Queued during the read: its turn now.
			f.queue = append(f.queue, s.name)
			select {
			case f.wake <- struct{}{}:
			default:
			}
		}
		f.mu.Unlock()
	}
}

// read reads one service and publishes the answer to its watches.
func (f *feed) read(s *feedService, mode int) {
	q := f.opts.queryOptions(mode == readBlocking)
	f.mu.Lock()
	if mode == readBlocking && s.index > 0 {
		q.WaitIndex = s.index
		q.WaitTime = feedReadWait
	} else {
		q.WaitTime = 0
	}
	f.mu.Unlock()
	rctx, cancel := context.WithTimeout(f.ctx, feedReadWait+10*time.Second)
	var entries []*api.ServiceEntry
	var meta *api.QueryMeta
	err := f.do(func() (err error) {
		entries, meta, err = f.client.Health().Service(s.name, f.opts.tag, true, q.WithContext(rctx))
		return err
	})
	cancel()
	if f.ctx.Err() != nil {
		return
	}
	if err != nil {
		f.readFailed(s, f.classify(err))
		return
	}
	f.readN.Add(1)
	log := f.log.With(zap.String("service", s.name))
	f.mu.Lock()
	if f.services[s.name] != s {
		f.mu.Unlock()
		return
	}
	seen := make(map[string]struct{}, len(s.reported))
	reported := s.reported
	snap := snapshotFromEntries(s.name, meta.LastIndex, &f.opts.keys, entries, func(p *EntryError) {
		msg := p.Error()
		seen[msg] = struct{}{}
		if _, ok := reported[msg]; !ok {
			log.Warn("consul watch: ignoring bad instance data", zap.Error(p))
		}
	})
	s.reported = seen
	if s.failures > 0 {
		log.Info("consul watch: recovered", zap.Int("failures", s.failures))
	}
	s.err, s.failures = nil, 0
	f.limitWarned = false
	s.answered = true
	s.snap = snap
	s.index = meta.LastIndex
	s.nodes = s.nodes[:0]
	grow := false
	for _, e := range entries {
		if e != nil && e.Node != nil {
			s.nodes = append(s.nodes, e.Node.Node)
			if _, ok := f.nodes[e.Node.Node]; !ok {
				f.nodes[e.Node.Node] = struct{}{}
				grow = true
			}
		}
	}
	if grow {
		f.nodesGen++
	}
	watches := make([]*Watch, 0, len(s.watches))
	for w := range s.watches {
		watches = append(watches, w)
	}
	f.updateErrLocked(s)
	f.mu.Unlock()
	published := false
	for _, w := range watches {
		if w.Publish(snap) {
			published = true
		}
	}
	if published {
		log.Debug("consul watch: published", zap.Int("instances", snap.Len()),
			zap.Strings("versions", snap.Versions), zap.Uint64("index", meta.LastIndex))
	}
}

// readFailed records a failed read and schedules another after a backoff.
func (f *feed) readFailed(s *feedService, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[s.name] != s {
		return
	}
	s.err = err
	s.failures++
	pause := f.opts.backoff(s.failures)
	if s.failures == 1 {
		f.log.Warn("consul watch: read failed; keeping the last answer and retrying",
			zap.String("service", s.name), zap.Error(err), zap.Duration("retry_in", pause))
	}
	f.updateErrLocked(s)
	if s.retry != nil {
		s.retry.Stop()
	}
	s.retry = time.AfterFunc(pause, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.ctx.Err() == nil && f.services[s.name] == s {
			f.enqueueLocked(s, readAtOnce)
		}
	})
}

// errLocked is the service's current failure: its own read's, else the
// feed's while the feed fails.
func (f *feed) errLocked(s *feedService) error {
	if s.err != nil {
		return s.err
	}
	return f.feedErrLocked()
}

// feedErrLocked is the failure of a feed query, if one fails: while any
// does, changes may go unseen.
func (f *feed) feedErrLocked() error {
	for _, err := range f.feedErrs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *feed) updateErrLocked(s *feedService) {
	err := f.errLocked(s)
	for w := range s.watches {
		w.Fail(err)
	}
}

// setFeedErr records the state of feed query q and reports whether it
// failed before (an answer with err nil is then its recovery).
func (f *feed) setFeedErr(q int, err error) (failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	failed = f.feedErrs[q] != nil
	if !failed && err == nil {
		return false
	}
	f.feedErrs[q] = err
	for _, s := range f.services {
		f.updateErrLocked(s)
	}
	return failed
}

// stats counts the feed's services by state.
func (f *feed) stats() ConsulStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ConsulStats{Services: len(f.services), Connections: int(f.open.Load()), Refused: f.refused.Load(),
		Answers: f.feedN.Load() + f.readN.Load(), FeedAnswers: f.feedN.Load()}
	for _, s := range f.services {
		if !s.answered {
			st.Unanswered++
		}
		if f.errLocked(s) != nil {
			st.Failing++
		}
	}
	return st
}
