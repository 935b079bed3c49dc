package grpcroute

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Registration is init-time only: here, before any channel exists.
	Register()
	goleak.VerifyTestMain(m,
		// The HTTP client's idle keep-alive connections (to the Consul agent
		// and the HTTP hops of mixed chains) outlive a test briefly; they
		// belong to net/http's transport, not to this package.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}
