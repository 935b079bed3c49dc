// Command rest shows graylane's typed client, package balancer/rest, calling
// two versions of a small JSON service, with blue/green decided by a header.
//
//	go run ./examples/rest
//
// The chain:
//
//	client -> web -> user-service 1.0 (one instance)
//	                 user-service 1.1 (two instances; one of them flaky)
//
// web holds a release rule: requests with the header x-beta: true go to
// user-service 1.1, all others to 1.0. It calls user-service through a
// rest.Client over its balancer's http.Client:
//
//	users := rest.New("user-service", b.Client())
//	u, err := rest.Get[User](r.Context(), users, "/users/{id}", rest.Param("id", id))
//
// The program shows, and checks (exiting 1 if any check fails):
//   - Get decoding into web's own User type, from either version (1.1 adds a
//     field; 1.0 leaves it zero);
//   - a 404 arriving as a *rest.StatusError whose body decodes into the
//     service's error document;
//   - a POST, which is not idempotent, going once: when the flaky instance
//     answers 503 the caller sees the error;
//   - a POST with an idempotency key marked rest.Retryable(): the balancer
//     sends it again to the other 1.1 instance, and user-service, which
//     deduplicates by key, creates each user exactly once;
//   - a protobuf endpoint: rest.Encoding(rest.Protobuf) asks for
//     application/x-protobuf and the answer decodes into a message;
//   - a form endpoint: a struct with form tags goes out urlencoded and the
//     urlencoded answer decodes into one;
//   - an interceptor adding web's bearer token to every call (user-service
//     answers 401 without it), and an error decoder turning user-service's
//     4xx answers into web's own *UserServiceError: the 404 above, and the
//     401 of a client without the interceptor.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/rest"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
)

// betaRule sends x-beta: true to user-service 1.1 and everything else to
// 1.0. It is an orchestration spec: graylane reads the versions (1.0 old,
// 1.1 new) from the registry.
const betaRule = `service: [user-service]
blueGreen:
  - expression: "#H['x-beta'] == 'true'"
    route: blue   # new: 1.1
  - expression: "#H['x-beta'] != 'true'"
    route: green  # old: 1.0, for every other request (a missing header too)
`

func main() {
	demo.Main("rest", 30*time.Second, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, log)
	})
}

// User is web's view of a user: the type rest.Get decodes into.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Tier is new in user-service 1.1; 1.0 does not send it.
	Tier string `json:"tier,omitempty"`
	// ServedBy names the user-service instance that answered.
	ServedBy string `json:"servedBy"`
}

// NewUser is the body of a sign-up.
type NewUser struct {
	Name string `json:"name"`
}

// apiError is user-service's error document.
type apiError struct {
	Error string `json:"error"`
}

// SignupForm is the body of a form sign-up, both ways.
type SignupForm struct {
	ID       string `form:"id,omitempty"`
	Name     string `form:"name"`
	ServedBy string `form:"servedBy,omitempty"`
}

// webToken is the token web presents to user-service.
const webToken = "web-token"

// UserServiceError is web's own error for user-service's 4xx answers,
// made by its rest.Client's error decoder.
type UserServiceError struct {
	Status  int
	Version string // the X-Version of the instance that answered
	Message string
}

func (e *UserServiceError) Error() string {
	return fmt.Sprintf("user-service %s answered %d: %s", e.Version, e.Status, e.Message)
}

// decodeUserServiceError is web's rest.ErrorDecoder: a 4xx with
// user-service's error document becomes a *UserServiceError; anything else
// stays a *rest.StatusError.
func decodeUserServiceError(se *rest.StatusError) error {
	if se.StatusCode < 400 || se.StatusCode > 499 {
		return nil
	}
	var doc apiError
	if se.Decode(&doc) != nil {
		return nil
	}
	return &UserServiceError{Status: se.StatusCode, Version: se.Header.Get("X-Version"), Message: doc.Error}
}

// bearer is web's rest.Interceptor: it adds web's token to every call.
func bearer(r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+webToken)
	return nil
}

func run(ctx context.Context, out io.Writer, log *zap.Logger) error {
	reg := discovery.NewStatic()
	defer reg.Close()
	var fleet demo.Fleet
	defer fleet.Close()

	db := newStore()
	db.seed(User{ID: "42", Name: "Ada", Tier: "gold"})
	for _, in := range []struct {
		id, version string
		flaky       bool
	}{{"u-1.0", "1.0", false}, {"u-1.1-a", "1.1", false}, {"u-1.1-b", "1.1", true}} {
		addr, err := fleet.Serve(userService(in.id, in.version, in.flaky, db))
		if err != nil {
			return err
		}
		if err := reg.Add(discovery.Instance{
			ID: in.id, Service: "user-service", Version: in.version, Address: addr.IP.String(), Port: addr.Port,
		}); err != nil {
			return err
		}
	}

	rules := discovery.NewStaticRules([]byte(betaRule))
	defer rules.Close()
	b, err := balancer.New(reg,
		balancer.WithRuleSource(rules),
		// Passive ejection would soon take the flaky instance out; it is
		// off here so that every other POST meets it. Leave it on in a
		// service.
		balancer.WithEjection(balancer.Ejection{Failures: -1}),
		balancer.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := demo.WaitRule(ctx, b, nil); err != nil {
		return err
	}
	client := b.Client()
	defer client.CloseIdleConnections()
	users := rest.New("user-service", client,
		rest.WithCodecs(rest.JSON, rest.Protobuf, rest.Form),
		rest.WithInterceptors(bearer),
		rest.WithErrorDecoder(decodeUserServiceError))
	// anon is the same client without the interceptor.
	anon := rest.New("user-service", client, rest.WithErrorDecoder(decodeUserServiceError))
	webAddr, err := fleet.Serve(b.Middleware(web(users, anon)))
	if err != nil {
		return err
	}
	webURL := "http://" + webAddr.String()

	fmt.Fprintln(out, "graylane rest on the embedded registry")
	fmt.Fprintln(out, "chain: client -> web -> user-service 1.0 (u-1.0), 1.1 (u-1.1-a, u-1.1-b: flaky)")
	fmt.Fprintln(out, "rule at web: x-beta: true -> user-service 1.1, else 1.0")
	fmt.Fprintln(out)

	httpc := &http.Client{Timeout: 10 * time.Second}
	defer httpc.CloseIdleConnections()
	type result struct {
		status int
		body   string
		user   User
	}
	call := func(method, path string, header map[string]string) (result, error) {
		status, body, err := demo.Do(ctx, httpc, method, webURL+path, header)
		if err != nil {
			return result{}, err
		}
		r := result{status: status, body: strings.TrimSpace(string(body))}
		if status == http.StatusOK {
			err = json.Unmarshal(body, &r.user)
		}
		return r, err
	}

	failed := false
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tcall at web\trequests\tanswers\tserved by\tcheck")
	row := func(name, callText string, n int, results []result, problems []string) {
		answers, servedBy := map[string]int{}, map[string]int{}
		for _, r := range results {
			answers[strconv.Itoa(r.status)]++
			if r.user.ServedBy != "" {
				servedBy[r.user.ServedBy]++
			}
		}
		verdict := "ok"
		if len(problems) > 0 {
			failed = true
			verdict = "FAIL: " + strings.Join(problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", name, callText, n, demo.Counts(answers), demo.Counts(servedBy), verdict)
	}
	repeat := func(n int, method, path string, header func(i int) map[string]string) ([]result, error) {
		var rs []result
		for i := range n {
			r, err := call(method, path, header(i))
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}
	beta := func(int) map[string]string { return map[string]string{"x-beta": "true"} }
	none := func(int) map[string]string { return nil }

	// 1. and 2. Blue/green by header; Get decodes either version's answer.
	for _, c := range []struct {
		name     string
		header   func(int) map[string]string
		version  string
		wantTier string
	}{
		{"stable", none, "1.0", ""},
		{"beta", beta, "1.1", "gold"},
	} {
		rs, err := repeat(10, http.MethodGet, "/profile/42", c.header)
		if err != nil {
			return err
		}
		var problems []string
		for _, r := range rs {
			if r.status != http.StatusOK || !strings.HasPrefix(r.user.ServedBy, "u-"+c.version) || r.user.Tier != c.wantTier || r.user.Name != "Ada" {
				problems = append(problems, fmt.Sprintf("got %d %+v, want user 42 from %s with tier %q", r.status, r.user, c.version, c.wantTier))
				break
			}
		}
		row(c.name+" (x-beta: "+map[bool]string{true: "true", false: "none"}[c.version == "1.1"]+")",
			"rest.Get[User] /users/{id}", len(rs), rs, problems)
	}

	// 3. A 404 is a *rest.StatusError; web decodes the service's error.
	rs, err := repeat(1, http.MethodGet, "/profile/999", beta)
	if err != nil {
		return err
	}
	var problems []string
	const want404 = `user-service 1.1 answered 404: no user 999`
	if rs[0].status != http.StatusNotFound || rs[0].body != want404 {
		problems = append(problems, fmt.Sprintf("got %d %q, want 404 %q", rs[0].status, rs[0].body, want404))
	}
	row("missing user", "rest.Get[User] /users/{id}", 1, rs, problems)
	notFound := rs[0].body

	// 4. A POST without an idempotency key is sent once.
	before := db.len()
	rs, err = repeat(4, http.MethodPost, "/signup?name=Bo", beta)
	if err != nil {
		return err
	}
	problems = nil
	failedPosts := 0
	for _, r := range rs {
		if r.status != http.StatusOK {
			failedPosts++
			if r.status != http.StatusBadGateway || !strings.Contains(r.body, "503 Service Unavailable") {
				problems = append(problems, fmt.Sprintf("got %d %q, want 502 naming the 503", r.status, r.body))
			}
		}
	}
	if failedPosts != 2 {
		problems = append(problems, fmt.Sprintf("%d of 4 failed, want 2 (every other one meets the flaky instance)", failedPosts))
	}
	created := db.len() - before
	if created != 4 {
		problems = append(problems, fmt.Sprintf("%d users stored for 4 calls, want 4 (a POST without a key must go once)", created))
	}
	row("POST, no key", "rest.Post[NewUser, User]", 4, rs, problems)
	var oncePostErr string
	for _, r := range rs {
		if r.status != http.StatusOK {
			oncePostErr = r.body
			break
		}
	}

	// 5. A POST with an idempotency key is marked Retryable.
	before, flakyBefore := db.len(), db.postsTo("u-1.1-b")
	rs, err = repeat(8, http.MethodPost, "/signup?name=Cy", func(i int) map[string]string {
		return map[string]string{"x-beta": "true", "Idempotency-Key": "signup-" + strconv.Itoa(i)}
	})
	if err != nil {
		return err
	}
	problems = nil
	for _, r := range rs {
		if r.status != http.StatusOK || r.user.ServedBy != "u-1.1-a" {
			problems = append(problems, fmt.Sprintf("got %d %q, want 200 from u-1.1-a", r.status, r.body))
			break
		}
	}
	keyed, retried := db.len()-before, db.postsTo("u-1.1-b")-flakyBefore
	if keyed != 8 {
		problems = append(problems, fmt.Sprintf("user-service stored %d users for 8 keys", keyed))
	}
	if retried == 0 {
		problems = append(problems, "no POST met the flaky instance, so nothing was retried")
	}
	row("POST, idempotency key", "rest.Post[NewUser, User], rest.Retryable()", 8, rs, problems)

	// 6. A protobuf endpoint.
	protoBefore := db.protobufAnswers()
	rs, err = repeat(2, http.MethodGet, "/card/42", beta)
	if err != nil {
		return err
	}
	problems = nil
	for _, r := range rs {
		if r.status != http.StatusOK || r.user.Name != "Ada" || r.user.Tier != "gold" || !strings.HasPrefix(r.user.ServedBy, "u-1.1") {
			problems = append(problems, fmt.Sprintf("got %d %q, want user 42 from 1.1", r.status, r.body))
			break
		}
	}
	if n := db.protobufAnswers() - protoBefore; n != 2 {
		problems = append(problems, fmt.Sprintf("user-service answered %d of 2 in protobuf", n))
	}
	row("protobuf", "rest.Get[*structpb.Struct], rest.Encoding(rest.Protobuf)", 2, rs, problems)

	// 7. A form endpoint.
	before = db.len()
	rs, err = repeat(2, http.MethodPost, "/signup-form?name=Di", beta)
	if err != nil {
		return err
	}
	problems = nil
	for _, r := range rs {
		if r.status != http.StatusOK || r.user.Name != "Di" || r.user.ID == "" {
			problems = append(problems, fmt.Sprintf("got %d %q, want a new user Di", r.status, r.body))
			break
		}
	}
	if n := db.len() - before; n != 2 {
		problems = append(problems, fmt.Sprintf("%d users stored for 2 form sign-ups", n))
	}
	row("form", "rest.Post[SignupForm, SignupForm], rest.Encoding(rest.Form)", 2, rs, problems)

	// 8. Without the interceptor's token: a 401, as web's own error type.
	rs, err = repeat(1, http.MethodGet, "/anon/42", none)
	if err != nil {
		return err
	}
	problems = nil
	const want401 = `user-service 1.0 answered 401: missing or wrong token`
	if rs[0].status != http.StatusUnauthorized || rs[0].body != want401 {
		problems = append(problems, fmt.Sprintf("got %d %q, want 401 %q", rs[0].status, rs[0].body, want401))
	}
	row("no token", "rest.Get[User] without the interceptor", 1, rs, problems)
	noToken := rs[0].body
	tw.Flush()

	fmt.Fprintln(out)
	fmt.Fprintf(out, "missing user: the error decoder made web's *UserServiceError of it: %q\n", notFound)
	fmt.Fprintf(out, "POST, no key: %d of 4 failed and were not sent again: %q\n", failedPosts, oncePostErr)
	fmt.Fprintf(out, "  (the flaky instance had stored them anyway: %d users stored for 4 calls; a blind retry would have made duplicates)\n", created)
	fmt.Fprintf(out, "POST, idempotency key: %d answers of 503 from the flaky instance were retried on u-1.1-a; %d users stored for 8 keys, no duplicates\n", retried, keyed)
	fmt.Fprintf(out, "no token: every other call carried the interceptor's bearer token; this one got %q\n", noToken)
	if failed {
		return errors.New("some calls did not behave as shown (see the table)")
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Every call went to the version its header chose; errors and retries behaved as shown.")
	return nil
}

// web is the service that uses the typed client. Its handlers pass the
// inbound request's context to every call, so the route decided by the
// middleware applies.
func web(users, anon *rest.Client) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		var ue *UserServiceError
		if errors.As(err, &ue) {
			http.Error(w, ue.Error(), ue.Status)
			return
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	mux.HandleFunc("GET /profile/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, err := rest.Get[User](r.Context(), users, "/users/{id}", rest.Param("id", r.PathValue("id")))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("GET /anon/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, err := rest.Get[User](r.Context(), anon, "/users/{id}", rest.Param("id", r.PathValue("id")))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("GET /card/{id}", func(w http.ResponseWriter, r *http.Request) {
		card, err := rest.Get[*structpb.Struct](r.Context(), users, "/users/{id}",
			rest.Param("id", r.PathValue("id")), rest.Encoding(rest.Protobuf))
		if err != nil {
			fail(w, err)
			return
		}
		f := card.GetFields()
		writeJSON(w, http.StatusOK, User{ID: f["id"].GetStringValue(), Name: f["name"].GetStringValue(),
			Tier: f["tier"].GetStringValue(), ServedBy: f["servedBy"].GetStringValue()})
	})
	mux.HandleFunc("POST /signup-form", func(w http.ResponseWriter, r *http.Request) {
		got, err := rest.Post[SignupForm, SignupForm](r.Context(), users, "/users/form",
			SignupForm{Name: r.URL.Query().Get("name")}, rest.Encoding(rest.Form))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, User{ID: got.ID, Name: got.Name, ServedBy: got.ServedBy})
	})
	mux.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
		var opts []rest.CallOption
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			// user-service deduplicates by this key, so sending the POST
			// again to another instance is safe.
			opts = append(opts, rest.Header("Idempotency-Key", key), rest.Retryable())
		}
		u, err := rest.Post[NewUser, User](r.Context(), users, "/users", NewUser{Name: r.URL.Query().Get("name")}, opts...)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	return mux
}

// userService is one instance of user-service. All instances share db.
// A flaky instance stores a new user and then answers 503, as an instance
// whose response is lost after the commit would. Every call must carry
// web's bearer token.
func userService(id, version string, flaky bool, db *store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := db.get(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{Error: "no user " + r.PathValue("id")})
			return
		}
		if version == "1.0" {
			u.Tier = "" // 1.0 predates tiers
		}
		u.ServedBy = id
		if strings.HasPrefix(r.Header.Get("Accept"), "application/x-protobuf") {
			card, err := structpb.NewStruct(map[string]any{"id": u.ID, "name": u.Name, "tier": u.Tier, "servedBy": u.ServedBy})
			if err == nil {
				var b []byte
				if b, err = proto.Marshal(card); err == nil {
					db.answeredProtobuf()
					w.Header().Set("Content-Type", "application/x-protobuf")
					_, _ = w.Write(b)
					return
				}
			}
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("POST /users/form", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("name") == "" {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "a user needs a name"})
			return
		}
		u := db.create(id, "", r.PostForm.Get("name"))
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = io.WriteString(w, url.Values{"id": {u.ID}, "name": {u.Name}, "servedBy": {id}}.Encode())
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var nu NewUser
		if err := json.NewDecoder(r.Body).Decode(&nu); err != nil || nu.Name == "" {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "a user needs a name"})
			return
		}
		u := db.create(id, r.Header.Get("Idempotency-Key"), nu.Name)
		if flaky {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "restarting"})
			return
		}
		u.ServedBy = id
		writeJSON(w, http.StatusOK, u)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", version)
		if r.Header.Get("Authorization") != "Bearer "+webToken {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// store is user-service's database, shared by its instances.
type store struct {
	mu    sync.Mutex
	users map[string]User
	keys  map[string]string // idempotency key -> user id
	posts map[string]int    // instance id -> POSTs it took
	// protobuf counts the answers sent as protobuf.
	protobuf int
}

func (s *store) answeredProtobuf() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protobuf++
}

func (s *store) protobufAnswers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protobuf
}

func newStore() *store {
	return &store{users: map[string]User{}, keys: map[string]string{}, posts: map[string]int{}}
}

func (s *store) seed(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

func (s *store) get(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// create stores a new user, or returns the one already created with key.
// instance names the user-service instance that took the POST.
func (s *store) create(instance, key, name string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[instance]++
	if id, ok := s.keys[key]; ok && key != "" {
		return s.users[id]
	}
	u := User{ID: strconv.Itoa(1000 + len(s.users)), Name: name}
	s.users[u.ID] = u
	if key != "" {
		s.keys[key] = u.ID
	}
	return u
}

func (s *store) postsTo(instance string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[instance]
}

func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}
