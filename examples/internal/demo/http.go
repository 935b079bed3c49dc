package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Do sends one request without a body, with the given header values (empty
// ones are left out), and reads the whole answer, whatever its status.
func Do(ctx context.Context, client *http.Client, method, url string, header map[string]string) (status int, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// Get is Do for a GET that must answer 200 OK: any other status is an error
// that names the URL, the status and the body.
func Get(ctx context.Context, client *http.Client, url string, header map[string]string) (string, error) {
	status, body, err := Do(ctx, client, http.MethodGet, url, header)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("%s answered %d %s: %s", url, status, http.StatusText(status), body)
	}
	return string(body), nil
}

// Hop is a demo service's handler: it calls next (if any) through client
// with the inbound request's context, which is where the balancer's
// middleware put the route, and answers with the chain that served the
// request, e.g. "svc-a@1.1 > svc-b@1.1". self names this hop in the chain;
// an entry that only decides the route passes "" and adds nothing.
func Hop(self, next string, client *http.Client) http.Handler {
	name := self
	if name == "" {
		name = "entry"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if next == "" {
			io.WriteString(w, self) //nolint:errcheck // the client went away
			return
		}
		chain, err := Get(r.Context(), client, "http://"+next+"/", nil)
		if err != nil {
			http.Error(w, name+": "+err.Error(), http.StatusBadGateway)
			return
		}
		if self != "" {
			chain = self + " > " + chain
		}
		io.WriteString(w, chain) //nolint:errcheck // the client went away
	})
}
