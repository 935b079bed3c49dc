// Package rest is a small OpenFeign-style typed HTTP client: a [Client] bound
// to one service name, and generic, context-first functions that encode the
// request (JSON by default; protobuf, forms, raw streams or the caller's own
// codec) and decode the response into the caller's type.
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
// The request value is encoded by the Client's codec ([JSON] unless
// [WithCodecs] says otherwise; one call may pick another with [Encoding])
// and sent with its Content-Type; the bytes are buffered so that a
// transport may resend them on retry. The type [Empty] sends no body, a
// []byte is sent as it is, and an io.Reader is streamed as it is read,
// without buffering. A response with status 2xx is decoded into Resp by
// the codec that handles its Content-Type (the Client's first codec when
// none does); [Empty] discards the body, []byte returns it raw, and an
// io.ReadCloser is the body itself, unread, for the caller to stream and
// close. An empty body (or 204, 205) gives Resp's zero value. Other
// response bodies are read up to a limit ([WithMaxResponseBytes], 10 MiB
// by default), drained and closed, so connections are reused.
//
// # Codecs and content negotiation
//
// [JSON], [Protobuf] (google.golang.org/protobuf messages, binary) and
// [Form] (application/x-www-form-urlencoded, from url.Values or structs
// with `form` tags) are provided; any other format is a [Codec]. A Client's
// codecs are offered in its Accept header in order of preference, and the
// answer's Content-Type chooses the one that decodes it.
//
// # Per-client defaults and interceptors
//
// [WithBaseURL] and [WithBasePath] say where calls go, [WithHeader] adds
// headers to every call, [WithTimeout] bounds calls without a deadline, and
// [WithCallContext] derives every call's context (the balancer's
// per-request retry policy, say). [Interceptor]s change each request just
// before it is sent: auth headers, signatures.
//
// # Errors
//
// A response outside 2xx returns a [*StatusError] carrying the method, URL,
// status and (the first 64 KiB of) the body; match it with [errors.As]. An
// [ErrorDecoder] ([WithErrorDecoder]) turns it into the caller's own error
// type instead, as OpenFeign's does. A 2xx body that does not decode into
// Resp returns a [*DecodeError]. A body over the limit wraps
// [ErrResponseTooLarge]. Transport failures are returned wrapped, so
// errors.Is(err, context.DeadlineExceeded) works, as does
// errors.Is(err, balancer.ErrBreakerOpen) for a call failed fast by the
// balancer's circuit breaker.
//
// # Retries
//
// The balancer retries only idempotent methods by default. [Retryable] marks
// one call (a POST that the server deduplicates, say) as safe to retry. A
// streamed request body that cannot be read again (an io.Reader other than
// a *bytes.Reader, *bytes.Buffer or *strings.Reader, of unknown length) is
// sent once, whatever the method.
package rest
