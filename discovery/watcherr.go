package discovery

import (
	"errors"
	"fmt"
)

// ErrAgentLimit marks a request the Consul agent refused with 429 Too Many
// Requests: this host holds more HTTP connections to the agent than the
// agent's limits.http_max_conns_per_client allows (200 by default), counted
// over every process on the host. Test with errors.Is.
var ErrAgentLimit = errors.New("consul agent refused the connection: over its limits.http_max_conns_per_client")

// limitError is a 429 from the agent, with what this process holds.
type limitError struct {
	held int // requests this registry had open to the agent
	err  error
}

func (e *limitError) Error() string {
	return fmt.Sprintf("%v (429 Too Many Requests): every process on this host shares the agent's "+
		"limits.http_max_conns_per_client (200 by default); graylane's watches in this process held %d other connection(s) "+
		"to the agent at the time (at most %d with the shared feed); raise the limit in the agent's configuration "+
		"or open fewer connections from this host: %v",
		ErrAgentLimit, e.held, feedConns, e.err)
}

func (e *limitError) Unwrap() []error { return []error{ErrAgentLimit, e.err} }

// Err returns why the registry's last attempt to read the service failed,
// or nil when it succeeded or none has finished yet. A watch that is not
// Ready and has an error is being refused (errors.Is(err, ErrAgentLimit)
// for the agent's connection limit); a ready watch with an error keeps its
// last snapshot while the registry retries.
func (w *Watch) Err() error {
	if p := w.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Fail records why reading the service failed; nil clears it. Registry
// implementations call it after each attempt.
func (w *Watch) Fail(err error) {
	if err == nil {
		if w.failure.Load() != nil {
			w.failure.Store(nil)
		}
		return
	}
	w.failure.Store(&err)
}
