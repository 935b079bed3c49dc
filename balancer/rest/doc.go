// Package rest is a small OpenFeign-style typed HTTP client: a [Client] bound
// to one service name, and generic, context-first functions that encode the
// request as JSON and decode the JSON response into the caller's type.
//
// # Use
//
//	users := rest.New("user-service", b.Client())
//	u, err := rest.Get[User](ctx, users, "/users/{id}", rest.Param("id", id))
//	created, err := rest.Post[NewUser, User](ctx, users, "/users", nu)
//
// A Client sends to http://<service><path>. With the balancer's client
// ((*balancer.Balancer).Client()) its transport resolves the service name to
// a live instance chosen by the release rule, copies the routing headers of
// the call chain from ctx onto the request, and retries idempotent requests
// on another instance. Any other *http.Client works as well; [WithBaseURL]
// points a Client somewhere else (a test server, an https URL, a path
// prefix).
//
// # Requests and responses
//
// The request value is encoded with encoding/json and sent with
// Content-Type: application/json; the bytes are buffered so that a transport
// may resend them on retry. The type [Empty] sends no body, and a []byte is
// sent as it is. A response with status 2xx is decoded into Resp; [Empty]
// discards the body and []byte returns it raw. An empty body (or 204, 205)
// gives Resp's zero value. Every response body is read up to a limit
// ([WithMaxResponseBytes], 10 MiB by default), drained and closed, so
// connections are reused.
//
// # Errors
//
// A response outside 2xx returns a [*StatusError] carrying the method, URL,
// status and (the first 64 KiB of) the body; match it with [errors.As]. A 2xx
// body that is not valid JSON for Resp returns a [*DecodeError]. A body over
// the limit wraps [ErrResponseTooLarge]. Transport failures are returned
// wrapped, so errors.Is(err, context.DeadlineExceeded) works.
//
// # Retries
//
// The balancer retries only idempotent methods by default. [Retryable] marks
// one call (a POST that the server deduplicates, say) as safe to retry.
package rest
