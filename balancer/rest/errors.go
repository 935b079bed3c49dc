package rest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ErrResponseTooLarge is wrapped by the error of a call whose 2xx response
// body exceeds the Client's limit ([WithMaxResponseBytes]).
var ErrResponseTooLarge = errors.New("response body too large")

// StatusError is a response whose status is not 2xx. Match it with
// errors.As; [StatusCode] is a shortcut for the code alone.
type StatusError struct {
	Method     string      // the request method
	URL        string      // the request URL, password redacted
	StatusCode int         // the HTTP status code
	Status     string      // the status line text, "404 Not Found"
	Header     http.Header // the response headers (Retry-After, ...)
	// Body holds the response body, at most MaxErrorBody bytes of it.
	Body []byte
	// Truncated reports whether the body was longer than Body.
	Truncated bool
}

func newStatusError(hr *http.Request, resp *http.Response) *StatusError {
	// A read error leaves what was read: the status is the news here.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody+1))
	e := &StatusError{
		Method:     hr.Method,
		URL:        hr.URL.Redacted(),
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Header:     resp.Header,
		Body:       body,
	}
	if len(e.Body) > MaxErrorBody {
		e.Body, e.Truncated = e.Body[:MaxErrorBody], true
	}
	return e
}

// Error reads "rest: GET http://svc/path: 404 Not Found: <start of body>".
func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("rest: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.URL)
	b.WriteString(": ")
	if e.Status != "" {
		b.WriteString(e.Status)
	} else {
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if s := snippet(e.Body, 200); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

// Decode unmarshals the error body as JSON into v: the service's error
// document, as an OpenFeign ErrorDecoder would read it.
func (e *StatusError) Decode(v any) error {
	if e.Truncated {
		return errors.New("rest: error body truncated at " + strconv.Itoa(MaxErrorBody) + " bytes")
	}
	return json.Unmarshal(e.Body, v)
}

// StatusCode returns the status code of the [*StatusError] in err's chain,
// or 0 when there is none (a transport error, a decode error, nil).
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// DecodeError is a 2xx response whose body does not decode into the
// caller's type: not JSON, or JSON of another shape.
type DecodeError struct {
	Method      string
	URL         string
	StatusCode  int
	ContentType string // the response's Content-Type
	Body        []byte // the start of the body, at most MaxErrorBody bytes
	Err         error  // the encoding/json error
}

// Error names the request, the content type and the JSON error.
func (e *DecodeError) Error() string {
	msg := "rest: " + e.Method + " " + e.URL + ": decode " + strconv.Itoa(e.StatusCode) + " response"
	if e.ContentType != "" {
		msg += " (" + e.ContentType + ")"
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns the encoding/json error.
func (e *DecodeError) Unwrap() error { return e.Err }

// snippet returns up to n bytes of b as one line of valid UTF-8.
func snippet(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	if cut {
		s += "…"
	}
	return s
}
