package pick

import (
	"errors"
	"strconv"
)

// Sentinel errors that callers match with errors.Is.
var (
	// ErrNoInstance means no instance of a service may take the request:
	// the service has none, or none matches the request's route and the
	// failover found no other. It arrives wrapped in a *NoInstanceError
	// naming the service and the route.
	ErrNoInstance = errors.New("no instance available")
)

// NoInstanceError reports a request that no instance may take.
type NoInstanceError struct {
	Service    string     // the service called
	Constraint Constraint // what the route asked of the service
	Instances  int        // how many instances the service has in all
}

// Error names the service, the route and the number of instances.
func (e *NoInstanceError) Error() string {
	msg := "balancer: no instance of " + strconv.Quote(e.Service)
	if !e.Constraint.IsZero() {
		msg += " for route " + e.Constraint.String()
	}
	return msg + " (" + strconv.Itoa(e.Instances) + " live)"
}

// Unwrap returns ErrNoInstance.
func (e *NoInstanceError) Unwrap() error { return ErrNoInstance }
