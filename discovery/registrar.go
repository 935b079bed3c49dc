package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// Registration describes the local instance for Register.
type Registration struct {
	Service string // required
	Address string // required: the address other services call
	Port    int    // required, 1-65535
	// Version, Region, Zone, Env and Group go into Meta and into key=value
	// tags under the WithKeys names; empty ones are left out.
	Version, Region, Zone, Env, Group string
	// Tags are extra Consul tags.
	Tags []string
	// Meta is extra metadata; Consul allows keys of letters, digits, '-'
	// and '_' only.
	Meta map[string]string
	// Check is the health check; the zero value is a TTL check of
	// DefaultCheckTTL that the registrar reports passing while a TCP
	// connect to Address:Port succeeds.
	Check Check
	// DeregisterAfter lets Consul remove the instance once its check has
	// been critical this long (a crashed process that never deregistered).
	// 0 leaves it registered; Consul's minimum is one minute.
	DeregisterAfter time.Duration
}

// Check is the health check of a Registration: either a TTL check that the
// registrar itself feeds, or an HTTP check that the agent polls.
//
// The TTL check reflects whether the instance serves, not merely whether
// the process lives: every TTL/3 the registrar probes the instance's own
// listener (a TCP connect to Address:Port, or a GET of ProbeHTTP) and
// reports the check passing only when the probe succeeds, critical at once
// when it fails. A process whose server died while the process lives on
// leaves the healthy set within about TTL/3; a process that died entirely
// stops feeding the TTL and leaves when it expires. The probe runs in the
// process, so it needs no route from the agent to the instance (an agent
// in another network namespace, a container whose registered address the
// agent cannot reach) and works the same against every Consul version;
// registering after the listener is up avoids starting out critical.
type Check struct {
	// TTL is the time to live of a TTL check; the registrar probes and
	// reports every TTL/3. Used when HTTP is empty; 0 means
	// DefaultCheckTTL.
	TTL time.Duration
	// ProbeHTTP, when set, is the absolute http(s) URL the registrar GETs
	// to probe the instance instead of a TCP connect; 2xx passes. TTL
	// checks only.
	ProbeHTTP string
	// NoProbe reports the TTL check passing without probing, as long as
	// the process lives: for a process that cannot reach its own
	// registered address (a port mapped on another host, say). TTL
	// checks only.
	NoProbe bool
	// HTTP is the URL the agent polls; 2xx is passing.
	HTTP string
	// Interval is how often the agent polls HTTP (0: DefaultCheckInterval).
	Interval time.Duration
	// Timeout bounds each poll (0: Consul's default, 10s).
	Timeout time.Duration
}

// Registrar defaults.
const (
	DefaultCheckTTL      = 10 * time.Second
	DefaultCheckInterval = 10 * time.Second
	// DefaultProbeTimeout bounds one probe of the instance's listener (and
	// never exceeds the reporting period).
	DefaultProbeTimeout = 2 * time.Second
)

// ErrInvalidRegistration is wrapped by Register's errors about the
// Registration itself.
var ErrInvalidRegistration = errors.New("invalid registration")

// Registrar keeps the local instance registered with the Consul agent: it
// feeds the TTL check with the result of probing the instance's listener,
// re-registers when the agent has lost the instance (an agent restarted
// without its state), and deregisters on Close.
type Registrar struct {
	client *api.Client
	opts   options
	id     string
	reg    *api.AgentServiceRegistration
	period time.Duration
	ttl    bool
	probe  func(ctx context.Context) error // nil: no probe
	// healthy is the last probe's outcome, for logging transitions; only
	// the registrar's goroutine (and Register before it) touch it.
	healthy bool

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Register registers the local instance with the agent and starts keeping
// it registered. The instance ID is "<service>-<unique id>", the unique ID
// (see NewUniqueID) also going into meta spring_application_uuid (the
// WithKeys UUID name) as Nepxion expects, and the start time into
// graylane_started. ctx bounds the first registration only.
func Register(ctx context.Context, client *api.Client, reg Registration, opts ...Option) (*Registrar, error) {
	o := newOptions(opts)
	if client == nil {
		return nil, fmt.Errorf("consul register: nil client: %w", ErrInvalidRegistration)
	}
	started := o.now()
	uid, err := NewUniqueID(started, nil)
	if err != nil {
		return nil, fmt.Errorf("consul register: %w", err)
	}
	ar, period, ttl, err := buildRegistration(reg, &o.keys, uid, started)
	if err != nil {
		return nil, fmt.Errorf("consul register %q: %w", reg.Service, err)
	}
	r := &Registrar{client: client, opts: o, id: ar.ID, reg: ar, period: period, ttl: ttl, healthy: true}
	if ttl && !reg.Check.NoProbe {
		r.probe = newProbe(net.JoinHostPort(reg.Address, strconv.Itoa(reg.Port)), reg.Check.ProbeHTTP, min(period, DefaultProbeTimeout))
		// Start as the listener is: a new instance takes traffic at once
		// if it serves, and none before.
		if err := r.probe(ctx); err != nil {
			r.healthy = false
			ar.Check.Status = api.HealthCritical
			ar.Check.Notes = "graylane probe: " + err.Error()
			o.log.Warn("consul register: the instance does not serve yet; registering it critical",
				zap.String("id", r.id), zap.Error(err))
		}
	}
	if err := r.register(ctx); err != nil {
		return nil, fmt.Errorf("consul register %q: %w", reg.Service, err)
	}
	o.log.Info("consul register: registered", zap.String("id", r.id), zap.String("service", reg.Service),
		zap.String("address", ar.Address), zap.Int("port", ar.Port))
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(loopCtx)
	}()
	return r, nil
}

// ID returns the registered instance's Consul service ID.
func (r *Registrar) ID() string { return r.id }

// Close stops keeping the instance registered, deregisters it (bounded by
// a few seconds, so a vanished agent cannot hang shutdown) and waits for
// the registrar's goroutine. Idempotent; later calls return the first
// result.
func (r *Registrar) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q := &api.QueryOptions{Token: r.opts.token}
		if err := r.client.Agent().ServiceDeregisterOpts(r.id, q.WithContext(ctx)); err != nil {
			r.closeErr = fmt.Errorf("consul deregister %q: %w", r.id, err)
			return
		}
		r.opts.log.Info("consul register: deregistered", zap.String("id", r.id))
	})
	return r.closeErr
}

func (r *Registrar) register(ctx context.Context) error {
	return r.client.Agent().ServiceRegisterOpts(r.reg, api.ServiceRegisterOpts{
		ReplaceExistingChecks: true,
		Token:                 r.opts.token,
	}.WithContext(ctx))
}

// run keeps the instance registered: every period it probes the instance
// and reports the TTL check passing or critical (or, for HTTP checks, asks
// the agent whether it still knows the instance) and re-registers when the
// agent has lost it.
func (r *Registrar) run(ctx context.Context) {
	log := r.opts.log.With(zap.String("id", r.id))
	failures := 0
	for {
		pause := r.period
		if failures > 0 {
			pause = min(r.period, r.opts.backoff(failures))
		}
		if !r.opts.sleep(ctx, pause) {
			return
		}
		err := r.keepAlive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			if failures == 1 {
				log.Warn("consul register: agent unreachable; retrying", zap.Error(err))
			}
			continue
		}
		if failures > 0 {
			log.Info("consul register: agent reachable again", zap.Int("failures", failures))
		}
		failures = 0
	}
}

// keepAlive does one round of run; it returns an error when the agent
// could not be reached or refused the registration.
func (r *Registrar) keepAlive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.period, 5*time.Second))
	defer cancel()
	q := (&api.QueryOptions{Token: r.opts.token}).WithContext(ctx)
	lost := false
	if r.ttl {
		status, output := api.HealthPassing, ""
		if r.probe != nil {
			if perr := r.probe(ctx); perr != nil {
				status, output = api.HealthCritical, "graylane probe: "+perr.Error()
				if r.healthy {
					r.opts.log.Warn("consul register: the instance does not serve; reporting it critical",
						zap.String("id", r.id), zap.Error(perr))
				}
				r.healthy = false
			} else if !r.healthy {
				r.opts.log.Info("consul register: the instance serves; reporting it passing", zap.String("id", r.id))
				r.healthy = true
			}
		}
		// The registration carries the status of the last probe, so a
		// re-registration below does not undo it.
		r.reg.Check.Status = status
		r.reg.Check.Notes = output
		err := r.client.Agent().UpdateTTLOpts("service:"+r.id, output, status, q)
		if err == nil {
			return nil
		}
		var se api.StatusError
		if !errors.As(err, &se) {
			return err // transport error: the agent is away
		}
		// Any refusal: ask whether the agent still has the instance.
	}
	_, _, err := r.client.Agent().Service(r.id, q)
	switch {
	case err == nil:
		return nil
	case isStatus(err, 404):
		lost = true
	default:
		return err
	}
	if lost {
		r.opts.log.Warn("consul register: agent lost the instance; registering again", zap.String("id", r.id))
		if err := r.register(ctx); err != nil {
			return err
		}
	}
	return nil
}

// newProbe returns the probe of an instance: a GET of httpURL when set
// (2xx passes), else a TCP connect to hostPort; each bounded by timeout.
func newProbe(hostPort, httpURL string, timeout time.Duration) func(ctx context.Context) error {
	if httpURL != "" {
		// No keep-alive: one probe every few seconds gains nothing from a
		// pooled connection, and none outlives the registrar.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			_ = resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("GET %s: %s", httpURL, resp.Status)
			}
			return nil
		}
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostPort)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func buildRegistration(reg Registration, keys *Keys, uid string, started time.Time) (ar *api.AgentServiceRegistration, period time.Duration, ttl bool, err error) {
	switch {
	case reg.Service == "":
		return nil, 0, false, fmt.Errorf("empty service name: %w", ErrInvalidRegistration)
	case strings.ContainsAny(reg.Service, "/?#% \t\r\n"):
		return nil, 0, false, fmt.Errorf("service name %q: contains '/', '?', '#', '%%' or white space: %w", reg.Service, ErrInvalidRegistration)
	case reg.Address == "":
		return nil, 0, false, fmt.Errorf("empty address: %w", ErrInvalidRegistration)
	case reg.Port <= 0 || reg.Port > 65535:
		return nil, 0, false, fmt.Errorf("port %d outside 1-65535: %w", reg.Port, ErrInvalidRegistration)
	case reg.Check.TTL < 0 || reg.Check.Interval < 0 || reg.Check.Timeout < 0 || reg.DeregisterAfter < 0:
		return nil, 0, false, fmt.Errorf("negative check duration: %w", ErrInvalidRegistration)
	case reg.Check.TTL != 0 && reg.Check.TTL < time.Second:
		return nil, 0, false, fmt.Errorf("check TTL %s: want at least 1s: %w", reg.Check.TTL, ErrInvalidRegistration)
	case reg.Check.HTTP != "" && (reg.Check.ProbeHTTP != "" || reg.Check.NoProbe):
		return nil, 0, false, fmt.Errorf("check: ProbeHTTP and NoProbe are for TTL checks, not with HTTP: %w", ErrInvalidRegistration)
	case reg.Check.ProbeHTTP != "" && reg.Check.NoProbe:
		return nil, 0, false, fmt.Errorf("check: both ProbeHTTP and NoProbe: %w", ErrInvalidRegistration)
	case reg.Check.Interval != 0 && reg.Check.Interval < time.Second:
		return nil, 0, false, fmt.Errorf("check interval %s: want at least 1s (Consul's minimum): %w", reg.Check.Interval, ErrInvalidRegistration)
	}
	meta := make(map[string]string, len(reg.Meta)+8)
	maps.Copy(meta, reg.Meta)
	tags := slices.Clone(reg.Tags)
	for _, kv := range [...]struct{ key, value string }{
		{keys.Version, reg.Version}, {keys.Region, reg.Region}, {keys.Zone, reg.Zone},
		{keys.Env, reg.Env}, {keys.Group, reg.Group},
	} {
		if kv.value != "" {
			meta[kv.key] = kv.value
			tags = append(tags, kv.key+"="+kv.value)
		}
	}
	meta[keys.UUID] = uid
	meta[keys.Started] = strconv.FormatInt(started.UnixMilli(), 10)
	for k := range meta {
		if !validMetaKey(k) {
			return nil, 0, false, fmt.Errorf("meta key %q: Consul allows letters, digits, '-' and '_' (up to 128): %w", k, ErrInvalidRegistration)
		}
	}

	id := reg.Service + "-" + uid
	check := &api.AgentServiceCheck{CheckID: "service:" + id, Name: "graylane " + reg.Service}
	if reg.DeregisterAfter > 0 {
		check.DeregisterCriticalServiceAfter = reg.DeregisterAfter.String()
	}
	if reg.Check.ProbeHTTP != "" {
		if u, perr := url.Parse(reg.Check.ProbeHTTP); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, 0, false, fmt.Errorf("probe URL %q: want an absolute http(s) URL: %w", reg.Check.ProbeHTTP, ErrInvalidRegistration)
		}
	}
	if reg.Check.HTTP != "" {
		u, perr := url.Parse(reg.Check.HTTP)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, 0, false, fmt.Errorf("check URL %q: want an absolute http(s) URL: %w", reg.Check.HTTP, ErrInvalidRegistration)
		}
		interval := reg.Check.Interval
		if interval == 0 {
			interval = DefaultCheckInterval
		}
		check.HTTP = reg.Check.HTTP
		check.Interval = interval.String()
		if reg.Check.Timeout > 0 {
			check.Timeout = reg.Check.Timeout.String()
		}
		period = interval
	} else {
		t := reg.Check.TTL
		if t == 0 {
			t = DefaultCheckTTL
		}
		check.TTL = t.String()
		// Start passing (Register sets critical if the probe fails): a new
		// instance that serves should take traffic at once.
		check.Status = api.HealthPassing
		period = t / 3
		ttl = true
	}
	ar = &api.AgentServiceRegistration{
		ID:      id,
		Name:    reg.Service,
		Address: reg.Address,
		Port:    reg.Port,
		Tags:    tags,
		Meta:    meta,
		Check:   check,
	}
	return ar, period, ttl, nil
}

func validMetaKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
