package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
)

// The credentials a Server accepts when Options leaves them empty: what `chatrabridge
// dev` gives its demo integration.
const (
	DefaultChatraPublicKey = "sandbox-chatra-public-key"
	DefaultChatraSecretKey = "sandbox-chatra-secret-key"
	DefaultPlanfixToken    = "sandbox-planfix-token"
)

// Where a Server mounts its parts. An integration's Chatra apiUrl is URL()+ChatraPrefix
// and its Planfix accountUrl is URL()+PlanfixPrefix.
const (
	ChatraPrefix  = "/chatra"
	PlanfixPrefix = "/planfix"
	InspectPrefix = "/_sandbox"
)

// DefaultMaxHang bounds how long a "timeout" fault holds a request whose client never
// gives up.
const DefaultMaxHang = 5 * time.Minute

// Options configure a Server.
type Options struct {
	// ChatraPublicKey and ChatraSecretKey are the Chatra API keys the stand-in accepts;
	// empty means DefaultChatraPublicKey and DefaultChatraSecretKey.
	ChatraPublicKey, ChatraSecretKey string
	// PlanfixToken is the Planfix bearer token it accepts; empty means DefaultPlanfixToken.
	PlanfixToken string
	// PlanfixInterval is the least time between two Planfix requests of the token: 0
	// keeps Planfix's real limit (one request per second); a negative value turns the
	// limit off (fast tests).
	PlanfixInterval time.Duration
	// MaxHang bounds a "timeout" fault when the client never gives up; 0 means
	// DefaultMaxHang. The connection is then dropped.
	MaxHang time.Duration
}

// Server is Chatra's and Planfix's stand-ins behind one HTTP server, with an inspection
// and fault-injection API. It is a test double for tests, `chatrabridge dev` and the demo;
// production never starts it. It serves:
//
//	/chatra/api/...    Chatra's REST API (see Chatra): an integration's apiUrl is URL()+"/chatra"
//	/planfix/rest/...  Planfix's REST API (see Planfix): an integration's accountUrl is URL()+"/planfix"
//
// and, unauthenticated and never affected by faults, under /_sandbox:
//
//	GET    /_sandbox/state                     everything at once (State)
//	GET    /_sandbox/faults                    the fault policies in force (FaultsState)
//	POST   /_sandbox/faults                    set a fault policy (FaultPolicy as JSON)
//	DELETE /_sandbox/faults[?target=chatra]    clear the policies (of one target)
//	GET    /_sandbox/chatra/messages[?clientId=]  Chatra's inspection API (see Chatra),
//	GET|PUT /_sandbox/chatra/clients/{id}         mounted below /_sandbox/chatra
//	POST|DELETE /_sandbox/chatra/faults
//	PUT    /_sandbox/chatra/paid-plan
//	GET    /_sandbox/planfix/tasks             Planfix's tasks with their comments
//	GET    /_sandbox/planfix/tasks/{id}        one task with its comments
//	POST   /_sandbox/planfix/tasks/{id}/comments  an employee writes in the task:
//	                                           {"owner":"user:5","description":"..."} -> 201 {"id":N}
//	PUT    /_sandbox/planfix/tasks/{id}/status {"id":3}: an employee changes the status
//	GET    /_sandbox/planfix/contacts          contacts with their comments
//	GET    /_sandbox/planfix/requests          every request Planfix's stand-in received
//	POST   /_sandbox/planfix/faults            queue count one-off Planfix faults (PlanfixFault):
//	                                           {"status":503,"code":0,"message":"...","body":"","delay":"2s","drop":false,"count":2}
//	DELETE /_sandbox/planfix/faults            clear them
//	PUT    /_sandbox/planfix/rate-interval     {"interval":"0s"}: the rate limit (0s: off)
//
// Errors of the /_sandbox API are {"error":"message"}, but for /_sandbox/chatra, which
// answers as the Chatra stand-in does. A Server is safe for concurrent use.
type Server struct {
	chatra  *Chatra
	planfix *Planfix
	maxHang time.Duration
	inspect *http.ServeMux
	now     func() time.Time
	closing chan struct{}

	mu       sync.Mutex
	policies map[FaultTarget]*activePolicy
	counts   map[FaultTarget]*RequestCounts
	ln       net.Listener
	srv      *http.Server
	closed   bool
}

// FaultTarget is which API a fault policy applies to.
type FaultTarget string

// Fault targets.
const (
	TargetChatra  FaultTarget = "chatra"
	TargetPlanfix FaultTarget = "planfix"
	TargetBoth    FaultTarget = "both"
)

// FaultKind is what happens to a request a fault policy picks.
type FaultKind string

// Fault kinds. Each reproduces the target's own error shape.
const (
	// Fault5xx answers 500, 502 or 503 with the API's error body: Planfix's
	// {"result":"fail","code":0,"error":"..."}, Chatra's {"status":N,"error":"...","message":"..."}.
	Fault5xx FaultKind = "5xx"
	// Fault429 answers 429 with "Retry-After: 1" and the API's error body, as Planfix's
	// stand-in answers a request over its rate limit.
	Fault429 FaultKind = "429"
	// FaultTimeout never answers: the request hangs until the client gives up (or
	// MaxHang passes, or the server closes; the connection is then dropped).
	FaultTimeout FaultKind = "timeout"
	// FaultReset drops the connection without an answer (a TCP reset).
	FaultReset FaultKind = "reset"
)

// DefaultFaultKinds are the kinds of a policy that names none.
var DefaultFaultKinds = []FaultKind{Fault5xx, Fault429, FaultTimeout}

// FaultPolicy makes a share of the requests to one API, or both, fail. In JSON (the body
// of POST /_sandbox/faults) durations are Go duration strings:
//
//	{"target":"planfix","rate":0.3,"kinds":["5xx","429","timeout"],"latency":"200ms","duration":"60s","seed":42}
type FaultPolicy struct {
	// Target is the API: TargetChatra, TargetPlanfix or TargetBoth (the default).
	Target FaultTarget
	// Rate is the probability, 0 to 1, that a request fails; 1 fails every request.
	Rate float64
	// Kinds are the faults to choose from, with equal chances; empty means
	// DefaultFaultKinds.
	Kinds []FaultKind
	// Latency delays every request of the target (failing or not) this long.
	Latency time.Duration
	// Duration is how long the policy stays in force; 0 means until it is cleared or
	// replaced.
	Duration time.Duration
	// Seed, when not 0, makes the choices repeat: the same seed and the same sequence of
	// requests give the same faults. 0 picks a random seed.
	Seed uint64
}

// faultPolicyJSON is FaultPolicy's JSON form.
type faultPolicyJSON struct {
	Target   FaultTarget `json:"target"`
	Rate     float64     `json:"rate"`
	Kinds    []FaultKind `json:"kinds"`
	Latency  string      `json:"latency,omitempty"`
	Duration string      `json:"duration,omitempty"`
	Seed     uint64      `json:"seed,omitempty"`
}

// MarshalJSON writes the policy with durations as Go duration strings.
func (p FaultPolicy) MarshalJSON() ([]byte, error) {
	j := faultPolicyJSON{Target: p.Target, Rate: p.Rate, Kinds: p.Kinds, Seed: p.Seed}
	if j.Kinds == nil {
		j.Kinds = []FaultKind{}
	}
	if p.Latency != 0 {
		j.Latency = p.Latency.String()
	}
	if p.Duration != 0 {
		j.Duration = p.Duration.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the policy strictly: unknown keys and bad durations are errors.
// It does not validate the values (Validate does).
func (p *FaultPolicy) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j faultPolicyJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault policy: %w", err)
	}
	out := FaultPolicy{Target: j.Target, Rate: j.Rate, Kinds: j.Kinds, Seed: j.Seed}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"latency", j.Latency, &out.Latency}, {"duration", j.Duration, &out.Duration}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("fault policy: %s %q is not a duration such as \"200ms\" or \"60s\"", d.name, d.s)
		}
		*d.dst = v
	}
	*p = out
	return nil
}

// Validate checks the policy: a known target (or empty, for both), a rate from 0 to 1,
// known kinds, durations not negative. The error names the field.
func (p FaultPolicy) Validate() error {
	switch p.Target {
	case "", TargetChatra, TargetPlanfix, TargetBoth:
	default:
		return fmt.Errorf("target %q is not one of chatra, planfix, both", p.Target)
	}
	if math.IsNaN(p.Rate) || p.Rate < 0 || p.Rate > 1 {
		return fmt.Errorf("rate %v is not between 0 and 1", p.Rate)
	}
	for _, k := range p.Kinds {
		switch k {
		case Fault5xx, Fault429, FaultTimeout, FaultReset:
		default:
			return fmt.Errorf("kind %q is not one of 5xx, 429, timeout, reset", k)
		}
	}
	if p.Latency < 0 {
		return errors.New("latency must not be negative")
	}
	if p.Duration < 0 {
		return errors.New("duration must not be negative")
	}
	return nil
}

// activePolicy is a policy in force on one target.
type activePolicy struct {
	policy FaultPolicy // Target is the one target
	until  time.Time   // zero: until cleared
	rng    *rand.Rand
}

// FaultsState is the fault policies in force, by target; nil where there is none. It is
// the answer of GET, POST and DELETE /_sandbox/faults:
//
//	{"chatra":null,"planfix":{"policy":{"target":"planfix","rate":0.3,"kinds":["5xx"],"seed":42},"until":"2025-01-01T00:01:00Z"}}
type FaultsState struct {
	Chatra  *PolicyState `json:"chatra"`
	Planfix *PolicyState `json:"planfix"`
}

// PolicyState is one policy in force; Until is absent when it lasts until cleared.
type PolicyState struct {
	Policy FaultPolicy `json:"policy"`
	Until  *time.Time  `json:"until,omitempty"`
}

// RequestCounts count the requests that arrived for one API (faulty or not, inspection
// calls excluded) and the faults injected into them by kind.
type RequestCounts struct {
	Total  int               `json:"total"`
	Faults map[FaultKind]int `json:"faults"`
}

// New returns a server with fresh stand-ins and no fault policy; Start serves it on a
// socket, or it can be used as an http.Handler.
func New(o Options) *Server {
	if o.ChatraPublicKey == "" {
		o.ChatraPublicKey = DefaultChatraPublicKey
	}
	if o.ChatraSecretKey == "" {
		o.ChatraSecretKey = DefaultChatraSecretKey
	}
	if o.PlanfixToken == "" {
		o.PlanfixToken = DefaultPlanfixToken
	}
	if o.MaxHang <= 0 {
		o.MaxHang = DefaultMaxHang
	}
	s := &Server{
		chatra:   NewChatra(o.ChatraPublicKey, o.ChatraSecretKey),
		planfix:  NewPlanfix(o.PlanfixToken),
		maxHang:  o.MaxHang,
		now:      time.Now,
		closing:  make(chan struct{}),
		policies: map[FaultTarget]*activePolicy{},
		counts:   map[FaultTarget]*RequestCounts{},
	}
	switch {
	case o.PlanfixInterval < 0:
		s.planfix.SetRateInterval(0)
	case o.PlanfixInterval > 0:
		s.planfix.SetRateInterval(o.PlanfixInterval)
	}
	for _, t := range []FaultTarget{TargetChatra, TargetPlanfix} {
		s.counts[t] = &RequestCounts{Faults: map[FaultKind]int{}}
	}
	s.inspect = s.inspectRoutes()
	return s
}

// Chatra returns the Chatra stand-in, to seed clients or read messages from Go.
func (s *Server) Chatra() *Chatra { return s.chatra }

// Planfix returns the Planfix stand-in, to add comments or read tasks from Go.
func (s *Server) Planfix() *Planfix { return s.planfix }

// Start listens on addr ("127.0.0.1:8090"; port 0 picks a free one) before it returns,
// so a taken port is reported here, then serves in the background until Close. The
// error of a taken port names it.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("sandbox: start: the server is closed")
	}
	if s.srv != nil {
		return errors.New("sandbox: start: already started on " + s.ln.Addr().String())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_, port, splitErr := net.SplitHostPort(addr)
		if splitErr == nil && errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("sandbox: port %s is in use (listening on %s): %w", port, addr, err)
		}
		return fmt.Errorf("sandbox: cannot listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.srv)
	return nil
}

// URL returns the server's base URL ("http://127.0.0.1:8090"), or "" before Start. An
// unspecified listening address (":8090") is given as 127.0.0.1.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	a, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + s.ln.Addr().String()
	}
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// ChatraURL is the Chatra apiUrl of an integration wired to the server.
func (s *Server) ChatraURL() string { return s.URL() + ChatraPrefix }

// PlanfixURL is the Planfix accountUrl of an integration wired to the server.
func (s *Server) PlanfixURL() string { return s.URL() + PlanfixPrefix }

// Close releases the requests held by timeout faults, stops the server (waiting up to 5
// seconds for answers in progress) and closes its connections. It is idempotent; the
// server cannot be started again.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("sandbox: close: %w", err)
	}
	return nil
}

// SetFaults puts p in force on its target (both APIs for TargetBoth or an empty target),
// replacing what was in force there. It fails, changing nothing, when p is not valid.
func (s *Server) SetFaults(p FaultPolicy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("sandbox: set faults: %w", err)
	}
	if len(p.Kinds) == 0 {
		p.Kinds = DefaultFaultKinds
	}
	p.Kinds = slices.Clone(p.Kinds)
	targets := []FaultTarget{p.Target}
	if p.Target == "" || p.Target == TargetBoth {
		targets = []FaultTarget{TargetChatra, TargetPlanfix}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for i, t := range targets {
		one := p
		one.Target = t
		one.Kinds = slices.Clone(p.Kinds)
		seed := p.Seed
		if seed == 0 {
			seed = rand.Uint64()
		}
		a := &activePolicy{policy: one, rng: rand.New(rand.NewPCG(seed, uint64(i)+1))}
		if p.Duration > 0 {
			a.until = now.Add(p.Duration)
		}
		s.policies[t] = a
	}
	return nil
}

// ClearFaults removes the fault policies of target (both for TargetBoth or ""), and
// reports false for an unknown target.
func (s *Server) ClearFaults(target FaultTarget) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch target {
	case "", TargetBoth:
		clear(s.policies)
	case TargetChatra, TargetPlanfix:
		delete(s.policies, target)
	default:
		return false
	}
	return true
}

// Faults returns the fault policies in force.
func (s *Server) Faults() FaultsState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return FaultsState{Chatra: s.policyState(TargetChatra), Planfix: s.policyState(TargetPlanfix)}
}

// policy returns the policy in force on t, dropping an expired one. s.mu is held.
func (s *Server) policy(t FaultTarget) *activePolicy {
	a := s.policies[t]
	if a != nil && !a.until.IsZero() && !s.now().Before(a.until) {
		delete(s.policies, t)
		return nil
	}
	return a
}

// policyState describes the policy in force on t. s.mu is held.
func (s *Server) policyState(t FaultTarget) *PolicyState {
	a := s.policy(t)
	if a == nil {
		return nil
	}
	ps := &PolicyState{Policy: a.policy}
	ps.Policy.Kinds = slices.Clone(a.policy.Kinds)
	if !a.until.IsZero() {
		u := a.until.UTC()
		ps.Until = &u
	}
	return ps
}

// RequestCounts returns the counts of requests to each API, by target ("chatra",
// "planfix").
func (s *Server) RequestCounts() map[FaultTarget]RequestCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[FaultTarget]RequestCounts, len(s.counts))
	for t, c := range s.counts {
		out[t] = RequestCounts{Total: c.Total, Faults: cloneCounts(c.Faults)}
	}
	return out
}

func cloneCounts(m map[FaultKind]int) map[FaultKind]int {
	out := make(map[FaultKind]int, 4)
	for _, k := range []FaultKind{Fault5xx, Fault429, FaultTimeout, FaultReset} {
		out[k] = m[k]
	}
	return out
}

// ServeHTTP implements http.Handler: /chatra/..., /planfix/..., /_sandbox/..., and an
// index at /.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case underPrefix(path, ChatraPrefix):
		rest := strings.TrimPrefix(path, ChatraPrefix)
		if underPrefix(rest, InspectPrefix) {
			// The Chatra stand-in's own inspection API is mounted at /_sandbox/chatra
			// only, so that nothing below the API's base answers without its keys.
			chatraWriteError(w, http.StatusNotFound, "no such API path")
			return
		}
		s.serveAPI(w, r, TargetChatra, ChatraPrefix, s.chatra)
	case underPrefix(path, PlanfixPrefix):
		s.serveAPI(w, r, TargetPlanfix, PlanfixPrefix, s.planfix)
	case strings.HasPrefix(path, InspectPrefix+"/chatra/"):
		// Chatra's inspection handler expects /_sandbox/...: drop "/chatra".
		s.chatra.ServeHTTP(w, withPath(r, InspectPrefix, InspectPrefix+"/chatra"))
	case underPrefix(path, InspectPrefix):
		s.inspect.ServeHTTP(w, r)
	case path == "/" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{
			"chatraApiUrl":      ChatraPrefix,
			"planfixAccountUrl": PlanfixPrefix,
			"state":             InspectPrefix + "/state",
			"faults":            InspectPrefix + "/faults",
			"note":              "chatrabridge sandbox: a test double of Chatra's and Planfix's APIs",
		})
	default:
		writeError(w, http.StatusNotFound, "no such sandbox path: the APIs are under /chatra and /planfix, the inspection API under /_sandbox")
	}
}

// underPrefix reports whether path is prefix or below it.
func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// withPath returns r with the prefix old of its path replaced by repl (as http.StripPrefix
// does, for the raw path too).
func withPath(r *http.Request, repl, old string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path = repl + strings.TrimPrefix(r.URL.Path, old)
	if r.URL.RawPath != "" {
		r2.URL.RawPath = repl + strings.TrimPrefix(r.URL.RawPath, old)
	}
	if r2.URL.Path == "" {
		r2.URL.Path, r2.URL.RawPath = "/", ""
	}
	return r2
}

// serveAPI serves one API request under prefix: the fault policy of target first, then
// the stand-in h.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, target FaultTarget, prefix string, h http.Handler) {
	var (
		latency time.Duration
		kind    FaultKind
		status  int
	)
	s.mu.Lock()
	c := s.counts[target]
	c.Total++
	if a := s.policy(target); a != nil {
		latency = a.policy.Latency
		if a.policy.Rate > 0 && a.rng.Float64() < a.policy.Rate {
			kind = a.policy.Kinds[a.rng.IntN(len(a.policy.Kinds))]
			if kind == Fault5xx {
				status = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[a.rng.IntN(3)]
			}
			c.Faults[kind]++
		}
	}
	s.mu.Unlock()

	if latency > 0 || kind != "" {
		// Read the body first, as a server does before it stalls: only then does net/http
		// notice a client that gives up. The stand-in gets it back unread.
		buf, _ := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody))
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	}
	if latency > 0 {
		switch s.wait(r.Context(), latency) {
		case waitClientGone:
			return
		case waitClosing:
			dropConnection(w)
			return
		}
	}
	if kind != "" {
		w.Header().Set("X-Sandbox-Fault", string(kind))
	}
	switch kind {
	case "":
		h.ServeHTTP(w, withPath(r, "", prefix))
	case Fault5xx:
		msg := map[int]string{500: "Internal server error", 502: "Bad gateway", 503: "Service temporarily unavailable"}[status]
		if target == TargetPlanfix {
			planfixFail(w, status, 0, msg)
		} else {
			chatraWriteError(w, status, msg)
		}
	case Fault429:
		w.Header().Set("Retry-After", "1")
		if target == TargetPlanfix {
			// The same answer as the Planfix stand-in's own rate limit.
			planfixFail(w, http.StatusTooManyRequests, 0, "Too many requests: one request per second is allowed")
		} else {
			chatraWriteError(w, http.StatusTooManyRequests, "too many requests: slow down")
		}
	case FaultTimeout:
		t := time.NewTimer(s.maxHang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return // the client gave up: nothing to answer
		case <-s.closing:
		case <-t.C:
		}
		dropConnection(w)
	case FaultReset:
		dropConnection(w)
	}
}

// maxBufferedBody bounds what serveAPI reads of a body before a delay or a fault: the
// stand-ins refuse bodies over 1 MiB anyway.
const maxBufferedBody = 1<<20 + 1

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// Outcomes of Server.wait.
const (
	waitDone = iota
	waitClientGone
	waitClosing
)

// wait holds the request d long, or until the client gives up or the server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) int {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return waitDone
	case <-ctx.Done():
		return waitClientGone
	case <-s.closing:
		return waitClosing
	}
}

// dropConnection closes the request's connection without an answer, with a TCP reset
// where it can.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2, a recorder): abort the response the way net/http provides;
	// its server recovers this value silently.
	panic(http.ErrAbortHandler)
}

// ---- inspection ----

// State is everything the sandbox holds, the answer of GET /_sandbox/state.
type State struct {
	Planfix PlanfixState `json:"planfix"`
	Chatra  ChatraState  `json:"chatra"`
	// Requests counts what arrived at each API, faulty or not, by target.
	Requests map[FaultTarget]RequestCounts `json:"requests"`
	Faults   FaultsState                   `json:"faults"`
}

// PlanfixState is the Planfix stand-in's data.
type PlanfixState struct {
	Tasks    []PlanfixTaskState    `json:"tasks"`
	Contacts []PlanfixContactState `json:"contacts"`
	// Requests is how many requests reached the stand-in (injected faults did not).
	Requests int `json:"requests"`
}

// PlanfixTaskState is a task with its comments, oldest first. People are "user:N" or
// "contact:N".
type PlanfixTaskState struct {
	ID             int64                 `json:"id"`
	Name           string                `json:"name"`
	Description    string                `json:"description"`
	TemplateID     int64                 `json:"templateId,omitempty"`
	ProcessID      int64                 `json:"processId"`
	Status         PlanfixStatusState    `json:"status"`
	Assigner       string                `json:"assigner"`
	Assignees      []string              `json:"assignees"`
	Counterparty   string                `json:"counterparty,omitempty"`
	SourceObjectID string                `json:"sourceObjectId,omitempty"`
	Created        time.Time             `json:"created"`
	Comments       []PlanfixCommentState `json:"comments"`
}

// PlanfixStatusState is a task's status.
type PlanfixStatusState struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	IsActive bool   `json:"isActive"`
}

// PlanfixCommentState is a comment on a task or a contact.
type PlanfixCommentState struct {
	ID             int64     `json:"id"`
	Owner          string    `json:"owner"`
	Description    string    `json:"description"`
	IsHidden       bool      `json:"isHidden,omitempty"`
	SourceObjectID string    `json:"sourceObjectId,omitempty"`
	Recipients     []string  `json:"recipients,omitempty"` // who Planfix notified: "user:5", "role:assignee"
	Created        time.Time `json:"created"`
}

// PlanfixContactState is a contact with its comments (its profile's actions).
type PlanfixContactState struct {
	ID             int64                 `json:"id"`
	TemplateID     int64                 `json:"templateId,omitempty"`
	Name           string                `json:"name"`
	Midname        string                `json:"midname,omitempty"`
	Lastname       string                `json:"lastname"`
	Email          string                `json:"email"`
	Phones         []PlanfixPhoneState   `json:"phones"`
	Description    string                `json:"description,omitempty"`
	IsCompany      bool                  `json:"isCompany,omitempty"`
	SourceObjectID string                `json:"sourceObjectId,omitempty"`
	Created        time.Time             `json:"created"`
	Comments       []PlanfixCommentState `json:"comments"`
}

// PlanfixPhoneState is a phone of a contact; Type 1 mobile, 2 work, 3 home, 4 other.
type PlanfixPhoneState struct {
	Number string `json:"number"`
	Type   int    `json:"type"`
}

// PlanfixRequestState is one request the Planfix stand-in received (the bearer token
// left out); Status 0 means no answer was written.
type PlanfixRequestState struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Body   string    `json:"body,omitempty"`
	Status int       `json:"status"`
}

// ChatraState is the Chatra stand-in's data.
type ChatraState struct {
	// Messages are the messages sent through the API, oldest first.
	Messages []chatra.Message `json:"messages"`
	// Clients are the visitor cards, by id.
	Clients []chatra.ClientCard `json:"clients"`
	// Requests is how many /api/ requests reached the stand-in (injected faults did not).
	Requests int `json:"requests"`
}

// State returns a copy of everything the sandbox holds.
func (s *Server) State() State {
	st := State{
		Planfix: s.planfix.state(),
		Chatra: ChatraState{
			Messages: s.chatra.Messages(),
			Clients:  s.chatra.clientList(),
			Requests: s.chatra.RequestCount(),
		},
		Requests: s.RequestCounts(),
		Faults:   s.Faults(),
	}
	if st.Chatra.Messages == nil {
		st.Chatra.Messages = []chatra.Message{}
	}
	return st
}

// clientList returns copies of every client card, by id.
func (s *Chatra) clientList() []chatra.ClientCard {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]chatra.ClientCard, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, chatraCloneCard(c))
	}
	slices.SortFunc(out, func(a, b chatra.ClientCard) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// state returns the tasks and contacts with their comments, and the request count.
func (p *Planfix) state() PlanfixState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PlanfixState{Tasks: make([]PlanfixTaskState, 0, len(p.tasks)),
		Contacts: make([]PlanfixContactState, 0, len(p.contacts)), Requests: len(p.log)}
	for _, t := range p.tasks {
		st.Tasks = append(st.Tasks, p.taskState(t))
	}
	for _, c := range p.contacts {
		cs := PlanfixContactState{ID: c.ID, TemplateID: c.TemplateID, Name: c.Name, Midname: c.Midname,
			Lastname: c.Lastname, Email: c.Email, Phones: make([]PlanfixPhoneState, 0, len(c.Phones)),
			Description: c.Description, IsCompany: c.IsCompany, SourceObjectID: c.SourceObjectID,
			Created: c.Created.UTC(), Comments: p.commentStates(func(x *PlanfixComment) bool { return x.ContactID == c.ID })}
		for _, ph := range c.Phones {
			cs.Phones = append(cs.Phones, PlanfixPhoneState{Number: ph.Number, Type: ph.Type})
		}
		st.Contacts = append(st.Contacts, cs)
	}
	return st
}

// taskState describes t with its comments. p.mu is held.
func (p *Planfix) taskState(t *PlanfixTask) PlanfixTaskState {
	st, _ := p.status(t.ProcessID, t.StatusID)
	return PlanfixTaskState{ID: t.ID, Name: t.Name, Description: t.Description, TemplateID: t.TemplateID,
		ProcessID: t.ProcessID, Status: PlanfixStatusState{ID: t.StatusID, Name: st.Name, IsActive: st.IsActive},
		Assigner: t.Assigner, Assignees: append([]string{}, t.Assignees...), Counterparty: t.Counterparty,
		SourceObjectID: t.SourceObjectID, Created: t.Created.UTC(),
		Comments: p.commentStates(func(x *PlanfixComment) bool { return x.TaskID == t.ID })}
}

// commentStates describes the comments keep selects, oldest first. p.mu is held.
func (p *Planfix) commentStates(keep func(*PlanfixComment) bool) []PlanfixCommentState {
	out := []PlanfixCommentState{}
	for _, c := range p.comments {
		if keep(c) {
			out = append(out, PlanfixCommentState{ID: c.ID, Owner: c.Owner, Description: c.Description,
				IsHidden: c.IsHidden, SourceObjectID: c.SourceObjectID, Recipients: slices.Clone(c.Recipients), Created: c.Created.UTC()})
		}
	}
	return out
}

// clearFaults drops the queued one-off faults.
func (p *Planfix) clearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// inspectRoutes builds the /_sandbox API but for /_sandbox/chatra.
func (s *Server) inspectRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sandbox/faults", s.postFaults)
	mux.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		target := FaultTarget(r.URL.Query().Get("target"))
		if !s.ClearFaults(target) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("target %q is not one of chatra, planfix, both", target))
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	})

	p := s.planfix
	mux.HandleFunc("GET /_sandbox/planfix/tasks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, p.state().Tasks)
	})
	mux.HandleFunc("GET /_sandbox/planfix/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := positiveID(r.PathValue("id"))
		p.mu.Lock()
		var t *PlanfixTask
		if ok {
			t = p.task(id)
		}
		if t == nil {
			p.mu.Unlock()
			writeError(w, http.StatusNotFound, "no task "+r.PathValue("id"))
			return
		}
		st := p.taskState(t)
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /_sandbox/planfix/tasks/{id}/comments", func(w http.ResponseWriter, r *http.Request) {
		id, ok := positiveID(r.PathValue("id"))
		if _, found := p.Task(id); !ok || !found {
			writeError(w, http.StatusNotFound, "no task "+r.PathValue("id"))
			return
		}
		var in struct {
			Owner          string `json:"owner"`
			Description    string `json:"description"`
			IsHidden       bool   `json:"isHidden"`
			SourceObjectID string `json:"sourceObjectId"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if strings.TrimSpace(in.Description) == "" {
			writeError(w, http.StatusBadRequest, "description is required")
			return
		}
		cid, err := p.AddComment(PlanfixComment{TaskID: id, Owner: in.Owner, Description: in.Description,
			IsHidden: in.IsHidden, SourceObjectID: in.SourceObjectID})
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]int64{"id": cid})
	})
	mux.HandleFunc("PUT /_sandbox/planfix/tasks/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		id, ok := positiveID(r.PathValue("id"))
		if _, found := p.Task(id); !ok || !found {
			writeError(w, http.StatusNotFound, "no task "+r.PathValue("id"))
			return
		}
		var in struct {
			ID int64 `json:"id"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if err := p.SetTaskStatus(id, in.ID); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sandbox/planfix/contacts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, p.state().Contacts)
	})
	mux.HandleFunc("GET /_sandbox/planfix/requests", func(w http.ResponseWriter, _ *http.Request) {
		log := p.RequestLog()
		out := make([]PlanfixRequestState, 0, len(log))
		for _, q := range log {
			out = append(out, PlanfixRequestState{Time: q.Time.UTC(), Method: q.Method, Path: q.Path, Query: q.Query,
				Body: string(q.Body), Status: q.Status})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sandbox/planfix/faults", func(w http.ResponseWriter, r *http.Request) {
		var in planfixFaultJSON
		if !readJSON(w, r, &in) {
			return
		}
		f, n, err := in.fault()
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		fs := make([]PlanfixFault, n)
		for i := range fs {
			fs[i] = f
		}
		p.InjectFaults(fs...)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sandbox/planfix/faults", func(w http.ResponseWriter, _ *http.Request) {
		p.clearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sandbox/planfix/rate-interval", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Interval string `json:"interval"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		d, err := time.ParseDuration(in.Interval)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, `interval must be a duration such as "1s" ("0s" turns the limit off)`)
			return
		}
		p.SetRateInterval(d)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sandbox call %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// planfixFaultJSON is the body of POST /_sandbox/planfix/faults: Count (at least 1) of
// the same PlanfixFault, for the next requests within the rate limit, in order.
//
//	{"status":500,"code":0,"message":"...","body":"","delay":"2s","drop":false,"count":1}
type planfixFaultJSON struct {
	Status  int    `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Body    string `json:"body"`
	Delay   string `json:"delay"`
	Drop    bool   `json:"drop"`
	Count   int    `json:"count"`
}

// maxQueuedFaults bounds one POST /_sandbox/planfix/faults.
const maxQueuedFaults = 10000

func (in planfixFaultJSON) fault() (PlanfixFault, int, error) {
	f := PlanfixFault{Status: in.Status, Code: in.Code, Message: in.Message, Body: in.Body, Drop: in.Drop}
	if in.Delay != "" {
		d, err := time.ParseDuration(in.Delay)
		if err != nil || d < 0 {
			return f, 0, errors.New(`delay must be a duration such as "2s"`)
		}
		f.Delay = d
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return f, 0, errors.New("status must be an HTTP status code")
	}
	if f.Status == 0 && f.Body == "" && f.Delay == 0 && !f.Drop {
		return f, 0, errors.New("the fault does nothing: give a status, a body, a delay or drop")
	}
	if in.Count < 0 || in.Count > maxQueuedFaults {
		return f, 0, fmt.Errorf("count must be 1 to %d", maxQueuedFaults)
	}
	return f, max(in.Count, 1), nil
}

// postFaults serves POST /_sandbox/faults.
func (s *Server) postFaults(w http.ResponseWriter, r *http.Request) {
	var p FaultPolicy
	if !readJSON(w, r, &p) {
		return
	}
	if err := s.SetFaults(p); err != nil {
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "sandbox: set faults: "))
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// positiveID parses a positive decimal id.
func positiveID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// maxInspectBody bounds the bodies of /_sandbox calls.
const maxInspectBody = 1 << 20

// readJSON decodes one JSON object body into v, strictly (unknown keys are errors),
// answering 400 or 413 itself when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInspectBody))
	if err == nil && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		writeError(w, http.StatusBadRequest, "the body must be a JSON object")
		return false
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "the body is too large")
		} else {
			writeError(w, http.StatusBadRequest, "cannot read the body")
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be a JSON object: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "the body must be one JSON object")
		return false
	}
	return true
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// writeError answers {"error": message}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}
