package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Planfix sandbox's seeded data: one task process with three statuses, a task
// template in it, a contact template, the robot employee the token acts as and two
// employees with emails.
const (
	PlanfixProcessID            = 1
	PlanfixStatusNew            = 1 // active
	PlanfixStatusInProgress     = 2 // active
	PlanfixStatusCompleted      = 3 // inactive
	PlanfixTaskTemplateID       = 101
	PlanfixContactTemplateID    = 7
	PlanfixRobotUserID          = 1 // the employee the token acts as
	PlanfixDefaultRateInterval  = time.Second
	PlanfixDefaultDailyQuota    = 20000
	planfixMaxRequestBody       = 1 << 20
	planfixMaxPageSize          = 100
	planfixFieldChangeFailedMsg = "Field change failed"
)

// Planfix is an in-memory stand-in for Planfix's REST API, for tests and the dev stack;
// production never uses it. It serves the calls the bridge makes (docs/PLANFIX.md) under
// /rest/..., with the request and response shapes of the spec
// (reference/planfix-rest-api.swagger.json): bearer-token auth, "fields" selection,
// offset/pageSize pagination (at most 100), Planfix's error bodies and codes, failures on
// updates, and a limit of one request per second per token.
//
// It routes on the request's path alone, so it can be mounted below a prefix with
// http.StripPrefix. Ids are assigned sequentially per kind. A sourceObjectId is stored and
// returned, but, like Planfix as far as its documentation says, a repeated create with the
// same sourceObjectId creates a second object: finding the first is the client's job.
//
// Where the spec says nothing, the sandbox chooses, and says so: an over-limit request
// gets HTTP 429, and so on (see the comments). It is safe for concurrent use.
type Planfix struct {
	token string
	mux   *http.ServeMux
	now   func() time.Time

	mu            sync.Mutex
	hideSources   bool // SetHideSourceObjectIDs
	keepUser      bool // SetKeepUserAsAssigner
	refuseContact bool // SetRefuseContactAsAssigner
	rateInterval  time.Duration
	lastRequest   map[string]time.Time // by token
	dailyQuota    int
	used          int
	faults        []PlanfixFault
	accept202     int

	processes        []PlanfixProcess
	taskTemplates    []PlanfixTemplate
	contactTemplates []PlanfixTemplate
	users            []*PlanfixUser
	contacts         []*PlanfixContact
	tasks            []*PlanfixTask
	comments         []*PlanfixComment
	nextContact      int64
	nextTask         int64
	nextComment      int64
	log              []PlanfixRequest
}

// PlanfixProcess is a task process and its statuses.
type PlanfixProcess struct {
	ID       int64
	Name     string
	Statuses []PlanfixStatus
}

// PlanfixStatus is a task status of a process.
type PlanfixStatus struct {
	ID       int64
	Name     string
	Color    string
	IsActive bool
}

// PlanfixTemplate is a task or contact template.
type PlanfixTemplate struct {
	ID        int64
	Name      string
	ProcessID int64 // task templates only
}

// PlanfixUser is an employee.
type PlanfixUser struct {
	ID       int64
	Name     string
	Lastname string
	Email    string
	Role     string // "User", "Robot", ...
	Inactive bool
}

// PlanfixPhone is a contact's phone; Type is 1 mobile, 2 work, 3 home, 4 other.
type PlanfixPhone struct {
	Number string
	Type   int
}

// PlanfixContact is a contact as the sandbox holds it.
type PlanfixContact struct {
	ID             int64
	TemplateID     int64
	SourceObjectID string
	Name           string
	Midname        string
	Lastname       string
	Email          string
	Phones         []PlanfixPhone
	Description    string
	IsCompany      bool
	Created        time.Time
}

// PlanfixTask is a task as the sandbox holds it. People are "user:N" or "contact:N".
type PlanfixTask struct {
	ID             int64
	TemplateID     int64
	ProcessID      int64
	StatusID       int64
	SourceObjectID string
	Name           string
	Description    string
	Assigner       string
	Assignees      []string
	Counterparty   string
	Created        time.Time
}

// PlanfixComment is a comment on a task (TaskID) or on a contact (ContactID). Owner is
// "user:N" or "contact:N". Recipients are who the comment was addressed to (Planfix
// notifies them): "user:N", "group:N" and "role:assignee" (any role of the spec's enum).
type PlanfixComment struct {
	ID             int64
	TaskID         int64
	ContactID      int64
	SourceObjectID string
	Description    string
	Owner          string
	IsHidden       bool
	Recipients     []string
	Created        time.Time
}

// PlanfixRequest is one request the sandbox received. Header is a copy without
// Authorization; Status is what was answered (0 when the connection was dropped).
type PlanfixRequest struct {
	Time   time.Time
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	Status int
}

// PlanfixFault is what an injected failure does to one request: wait Delay (a slow
// answer, or a client timeout), then drop the connection (Drop), or answer Status with
// Body, or, when Body is empty, {"result":"fail","code":Code,"error":Message}. Header is
// added to the answer. A fault with only a Delay lets the request through afterwards.
type PlanfixFault struct {
	Status  int
	Code    int
	Message string
	Body    string
	Header  http.Header
	Delay   time.Duration
	Drop    bool
}

// NewPlanfix returns a sandbox that accepts token, with the seeded data and the rate
// limit of one request per second.
func NewPlanfix(token string) *Planfix {
	p := &Planfix{
		token:        token,
		now:          time.Now,
		rateInterval: PlanfixDefaultRateInterval,
		lastRequest:  map[string]time.Time{},
		dailyQuota:   PlanfixDefaultDailyQuota,
		processes: []PlanfixProcess{{ID: PlanfixProcessID, Name: "Chats", Statuses: []PlanfixStatus{
			{ID: PlanfixStatusNew, Name: "New", Color: "#4573b1", IsActive: true},
			{ID: PlanfixStatusInProgress, Name: "In progress", Color: "#f0ad4e", IsActive: true},
			{ID: PlanfixStatusCompleted, Name: "Completed", Color: "#5cb85c", IsActive: false},
		}}},
		taskTemplates:    []PlanfixTemplate{{ID: PlanfixTaskTemplateID, Name: "Chat from the website", ProcessID: PlanfixProcessID}},
		contactTemplates: []PlanfixTemplate{{ID: PlanfixContactTemplateID, Name: "Customer"}},
		users: []*PlanfixUser{
			{ID: PlanfixRobotUserID, Name: "Bridge", Lastname: "Robot", Email: "robot@example.com", Role: "Robot"},
			{ID: 5, Name: "Anna", Lastname: "Petrova", Email: "anna@example.com", Role: "User"},
			{ID: 6, Name: "Boris", Lastname: "Ivanov", Email: "boris@example.com", Role: "User"},
		},
		nextContact: 1,
		nextTask:    1,
		nextComment: 1,
	}
	mux := http.NewServeMux()
	handle := func(pattern string, h func(*Planfix, http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h(p, w, r) })
	}
	handle("GET /rest/ping", (*Planfix).servePing)
	handle("POST /rest/contact/list", (*Planfix).serveContactList)
	handle("POST /rest/contact/{$}", (*Planfix).serveContactCreate)
	handle("GET /rest/contact/templates", (*Planfix).serveContactTemplates)
	handle("GET /rest/contact/{id}", (*Planfix).serveContactGet)
	handle("POST /rest/contact/{id}", (*Planfix).serveContactUpdate)
	handle("POST /rest/contact/{id}/comments/{$}", (*Planfix).serveContactComment)
	handle("POST /rest/task/{$}", (*Planfix).serveTaskCreate)
	handle("POST /rest/task/list", (*Planfix).serveTaskList)
	handle("GET /rest/task/templates", (*Planfix).serveTaskTemplates)
	handle("GET /rest/task/{id}", (*Planfix).serveTaskGet)
	handle("POST /rest/task/{id}", (*Planfix).serveTaskUpdate)
	handle("POST /rest/task/{id}/comments/{$}", (*Planfix).serveTaskComment)
	handle("POST /rest/task/{id}/comments/list", (*Planfix).serveTaskCommentList)
	handle("GET /rest/comment/{id}", (*Planfix).serveCommentGet)
	handle("GET /rest/user/{id}", (*Planfix).serveUserGet)
	handle("POST /rest/user/list", (*Planfix).serveUserList)
	handle("GET /rest/process/task", (*Planfix).serveProcesses)
	handle("GET /rest/process/task/{id}/statuses", (*Planfix).serveStatuses)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		planfixFail(w, http.StatusNotFound, 0, fmt.Sprintf("Unknown method %s %s", r.Method, r.URL.Path))
	})
	p.mux = mux
	return p
}

// SetRateInterval sets the least time between two requests of one token; 0 turns the
// limit off (fast tests).
func (p *Planfix) SetRateInterval(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rateInterval = max(d, 0)
}

// SetHideSourceObjectIDs makes the sandbox behave as a Planfix that keeps no
// sourceObjectId, or does not return it (the spec leaves open whether one sent without a
// sourceId is kept): every task, contact and comment it answers with has an empty
// sourceObjectId. A client must then find what a lost create made by other fields.
func (p *Planfix) SetHideSourceObjectIDs(hide bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hideSources = hide
}

// SetKeepUserAsAssigner makes the sandbox behave as a Planfix that accepts a contact as
// a new task's assigner but silently keeps an employee instead (the robot user, as for a
// task created without an assigner): the create succeeds, and reading the task back
// shows the robot user as its assigner. Whether Planfix does this is unverified.
func (p *Planfix) SetKeepUserAsAssigner(keep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keepUser = keep
}

// SetRefuseContactAsAssigner makes the sandbox behave as a Planfix that refuses a contact
// as a new task's assigner: HTTP 400, code 41, with a message in Russian that does not
// name the parameter (so a client cannot rely on the wording, nor on the word
// "assigner"). Whether Planfix does this is unverified.
func (p *Planfix) SetRefuseContactAsAssigner(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseContact = refuse
}

// sourceJSON is a stored sourceObjectId as the sandbox answers it (p.mu held).
func (p *Planfix) sourceJSON(id string) string {
	if p.hideSources {
		return ""
	}
	return id
}

// SetDailyQuota sets how many requests the account may make in total (the sandbox's
// "day" never ends) and resets the count; X-RateLimit-Remaining shows what is left.
func (p *Planfix) SetDailyQuota(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dailyQuota, p.used = max(n, 0), 0
}

// InjectFaults queues faults; each of the next authorized requests that is within the
// rate limit takes one, in order.
func (p *Planfix) InjectFaults(faults ...PlanfixFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, faults...)
}

// FailNext makes the next n requests fail with HTTP status and Planfix error code (0 for
// none).
func (p *Planfix) FailNext(n, status, code int) {
	fs := make([]PlanfixFault, max(n, 0))
	for i := range fs {
		fs[i] = PlanfixFault{Status: status, Code: code, Message: fmt.Sprintf("Injected failure (code %d)", code)}
	}
	p.InjectFaults(fs...)
}

// AcceptNextTaskUpdates makes the next n successful POST /task/{id} answer 202 Accepted
// (the change queued) instead of 200. The sandbox applies the change at once.
func (p *Planfix) AcceptNextTaskUpdates(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accept202 = max(n, 0)
}

// AddUser adds or replaces an employee.
func (p *Planfix) AddUser(u PlanfixUser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.users {
		if x.ID == u.ID {
			p.users[i] = &u
			return
		}
	}
	p.users = append(p.users, &u)
}

// AddContact stores a contact as if created in Planfix and returns its number (c.ID is
// ignored).
func (p *Planfix) AddContact(c PlanfixContact) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.ID = p.nextContact
	p.nextContact++
	if c.Created.IsZero() {
		c.Created = p.now()
	}
	p.contacts = append(p.contacts, &c)
	return c.ID
}

// AddTask stores a task as if created in Planfix and returns its number (t.ID is
// ignored; a zero process and status become the seeded process's first status).
func (p *Planfix) AddTask(t PlanfixTask) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	t.ID = p.nextTask
	p.nextTask++
	if t.ProcessID == 0 {
		t.ProcessID = PlanfixProcessID
	}
	if t.StatusID == 0 {
		t.StatusID = PlanfixStatusNew
	}
	if t.Assigner == "" {
		t.Assigner = fmt.Sprintf("user:%d", PlanfixRobotUserID)
	}
	if t.Created.IsZero() {
		t.Created = p.now()
	}
	p.tasks = append(p.tasks, &t)
	return t.ID
}

// AddComment stores a comment as if written in Planfix (an employee's reply: Owner
// "user:5") and returns its number. The task or contact must exist.
func (p *Planfix) AddComment(c PlanfixComment) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.TaskID != 0 && p.task(c.TaskID) == nil {
		return 0, fmt.Errorf("sandbox planfix: no task %d", c.TaskID)
	}
	if c.ContactID != 0 && p.contact(c.ContactID) == nil {
		return 0, fmt.Errorf("sandbox planfix: no contact %d", c.ContactID)
	}
	if (c.TaskID == 0) == (c.ContactID == 0) {
		return 0, fmt.Errorf("sandbox planfix: a comment belongs to exactly one task or contact")
	}
	if c.Owner == "" {
		c.Owner = fmt.Sprintf("user:%d", PlanfixRobotUserID)
	}
	if !p.personExists(c.Owner) {
		return 0, fmt.Errorf("sandbox planfix: no person %q", c.Owner)
	}
	c.ID = p.nextComment
	p.nextComment++
	if c.Created.IsZero() {
		c.Created = p.now()
	}
	p.comments = append(p.comments, &c)
	return c.ID, nil
}

// SetTaskStatus changes a task's status as an employee would in Planfix.
func (p *Planfix) SetTaskStatus(taskID, statusID int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.task(taskID)
	if t == nil {
		return fmt.Errorf("sandbox planfix: no task %d", taskID)
	}
	if _, ok := p.status(t.ProcessID, statusID); !ok {
		return fmt.Errorf("sandbox planfix: process %d has no status %d", t.ProcessID, statusID)
	}
	t.StatusID = statusID
	return nil
}

// Tasks returns a copy of every task, by number.
func (p *Planfix) Tasks() []PlanfixTask {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PlanfixTask, 0, len(p.tasks))
	for _, t := range p.tasks {
		out = append(out, t.clone())
	}
	return out
}

// clone is a copy of t that shares nothing with it.
func (t *PlanfixTask) clone() PlanfixTask {
	c := *t
	c.Assignees = slices.Clone(t.Assignees)
	return c
}

// Task returns a copy of task id.
func (p *Planfix) Task(id int64) (PlanfixTask, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.task(id)
	if t == nil {
		return PlanfixTask{}, false
	}
	return t.clone(), true
}

// Comments returns a copy of task id's comments, oldest first.
func (p *Planfix) Comments(taskID int64) []PlanfixComment {
	return p.commentsWhere(func(c *PlanfixComment) bool { return c.TaskID == taskID })
}

// ContactComments returns a copy of contact id's comments, oldest first.
func (p *Planfix) ContactComments(contactID int64) []PlanfixComment {
	return p.commentsWhere(func(c *PlanfixComment) bool { return c.ContactID == contactID })
}

func (p *Planfix) commentsWhere(keep func(*PlanfixComment) bool) []PlanfixComment {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PlanfixComment
	for _, c := range p.comments {
		if keep(c) {
			cc := *c
			cc.Recipients = slices.Clone(c.Recipients)
			out = append(out, cc)
		}
	}
	return out
}

// Contacts returns a copy of every contact, by number.
func (p *Planfix) Contacts() []PlanfixContact {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PlanfixContact, 0, len(p.contacts))
	for _, c := range p.contacts {
		x := *c
		x.Phones = slices.Clone(c.Phones)
		out = append(out, x)
	}
	return out
}

// RequestLog returns a copy of every request received so far, in arrival order.
func (p *Planfix) RequestLog() []PlanfixRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PlanfixRequest, len(p.log))
	for i, r := range p.log {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// planfixStatusWriter records the status a handler answers.
type planfixStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *planfixStatusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *planfixStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler. In order: the token (401, code 1), the rate limit
// (429), an injected fault, the daily quota (code 22), then the call itself.
func (p *Planfix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, planfixMaxRequestBody+1))
	tooLarge := len(body) > planfixMaxRequestBody
	header := r.Header.Clone()
	header.Del("Authorization")

	p.mu.Lock()
	now := p.now()
	idx := len(p.log)
	p.log = append(p.log, PlanfixRequest{Time: now, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Header: header, Body: slices.Clone(body)})
	p.mu.Unlock()
	sw := &planfixStatusWriter{ResponseWriter: w}
	defer func() {
		p.mu.Lock()
		p.log[idx].Status = sw.status
		p.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")

	token, ok := planfixBearer(r.Header.Get("Authorization"))
	if !ok || token != p.token {
		// As the spec's example for GET /ping.
		planfixFail(sw, http.StatusUnauthorized, 1, "Access denied, unknown token")
		return
	}

	p.mu.Lock()
	if last, seen := p.lastRequest[token]; seen && p.rateInterval > 0 && now.Sub(last) < p.rateInterval {
		wait := p.rateInterval - now.Sub(last)
		p.mu.Unlock()
		// Neither the spec nor PLANFIX.md says how Planfix answers a request over its
		// per-second limit. The sandbox answers the conventional 429 with a Retry-After
		// and a fail body without a specific code; the rejected request does not count.
		sw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		planfixFail(sw, http.StatusTooManyRequests, 0, "Too many requests: one request per second is allowed")
		return
	}
	p.lastRequest[token] = now
	var fault *PlanfixFault
	if len(p.faults) > 0 {
		f := p.faults[0]
		p.faults = p.faults[1:]
		fault = &f
	}
	p.used++
	over := p.used > p.dailyQuota
	remaining := max(p.dailyQuota-p.used, 0)
	p.mu.Unlock()
	sw.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))

	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			// Not hijackable (HTTP/2, a recorder): abort the response the way net/http
			// provides for it; the server recovers this value silently.
			panic(http.ErrAbortHandler)
		}
		for k, vs := range fault.Header {
			for _, v := range vs {
				sw.Header().Add(k, v)
			}
		}
		switch {
		case fault.Body != "":
			sw.WriteHeader(max(fault.Status, http.StatusOK))
			io.WriteString(sw, fault.Body)
			return
		case fault.Status != 0:
			planfixFail(sw, fault.Status, fault.Code, fault.Message)
			return
		}
	}
	if over {
		// Code 22 is documented (PLANFIX.md); its HTTP status is not. The sandbox uses 429.
		planfixFail(sw, http.StatusTooManyRequests, 22, "Daily request limit reached")
		return
	}
	if err != nil || tooLarge {
		planfixFail(sw, http.StatusBadRequest, 30, "Cannot read the request body")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mux.ServeHTTP(sw, r)
}

func planfixBearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// ---- encoding helpers ----

func planfixJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func planfixFail(w http.ResponseWriter, status, code int, msg string) {
	planfixJSON(w, status, map[string]any{"result": "fail", "code": code, "error": msg})
}

func planfixOK(w http.ResponseWriter, key string, v any) {
	planfixJSON(w, http.StatusOK, map[string]any{"result": "success", key: v})
}

func planfixCreated(w http.ResponseWriter, id int64) {
	planfixJSON(w, http.StatusCreated, map[string]any{"result": "success", "id": id})
}

// planfixDecode reads a JSON request body; on failure it answers code 30, as Planfix
// does for malformed JSON.
func planfixDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, v); err != nil {
		planfixFail(w, http.StatusBadRequest, 30, "Invalid JSON: "+err.Error())
		return false
	}
	return true
}

// planfixID is a number that may arrive as a JSON number or a numeric string.
type planfixID int64

func (id *planfixID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*id = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) {
			return fmt.Errorf("not an id: %s", s)
		}
		n = int64(f)
	}
	*id = planfixID(n)
	return nil
}

// planfixPersonID is a person reference: "user:5", "contact:12", or a bare number.
type planfixPersonID string

func (p *planfixPersonID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = planfixPersonID(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a person id: %s", b)
	}
	*p = planfixPersonID(n.String())
	return nil
}

type planfixRef struct {
	ID planfixID `json:"id"`
}

type planfixPersonRef struct {
	ID planfixPersonID `json:"id"`
}

type planfixPeopleRef struct {
	Users  []planfixPersonRef `json:"users"`
	Groups []planfixRef       `json:"groups"`
}

// planfixPathID parses {id}: "12", or "contact:12" / "user:5" when prefix allows it.
func planfixPathID(r *http.Request, prefix string) (int64, bool) {
	s := r.PathValue("id")
	if prefix != "" {
		if k, n, ok := strings.Cut(s, ":"); ok {
			if !strings.EqualFold(k, prefix) {
				return 0, false
			}
			s = n
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// planfixLookup returns what the request path's {id} names (lookup runs with p.mu held),
// or nil after answering as Planfix answers a missing one: status, code, and notFound
// followed by the id as the path gave it.
func planfixLookup[T any](w http.ResponseWriter, r *http.Request, prefix string, lookup func(int64) *T, status, code int, notFound string) *T {
	var x *T
	if id, ok := planfixPathID(r, prefix); ok {
		x = lookup(id)
	}
	if x == nil {
		planfixFail(w, status, code, notFound+r.PathValue("id"))
	}
	return x
}

var planfixUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// planfixCheckSource answers code 41 for a sourceObjectId that is not a UUID (the spec's
// format); it reports whether the value is acceptable.
func planfixCheckSource(w http.ResponseWriter, s *string) bool {
	if s == nil || *s == "" || planfixUUID.MatchString(*s) {
		return true
	}
	planfixFail(w, http.StatusBadRequest, 41, "Wrong value of parameter sourceObjectId: a UUID is expected")
	return false
}

// planfixFields parses a "fields" list.
func planfixFields(s string) map[string]bool {
	out := map[string]bool{"id": true}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out[f] = true
		}
	}
	return out
}

// planfixPick keeps the requested fields of an object (id always). Planfix returns only
// what "fields" names; without "fields" the sandbox returns the id alone (the spec does
// not say what the default is), so a client that forgets a field notices.
func planfixPick(full map[string]any, fields map[string]bool) map[string]any {
	out := make(map[string]any, len(fields))
	for k := range fields {
		if v, ok := full[k]; ok {
			out[k] = v
		}
	}
	return out
}

func planfixTime(t time.Time) map[string]string {
	u := t.UTC()
	return map[string]string{"date": u.Format("02-01-2006"), "time": u.Format("15:04"), "datetime": u.Format("2006-01-02T15:04Z")}
}

// planfixPage checks offset and pageSize (at most 100, as the spec says) and returns the
// bounds of the page within n items.
func planfixPage(w http.ResponseWriter, offset, pageSize int, n int) (lo, hi int, ok bool) {
	if pageSize == 0 {
		pageSize = planfixMaxPageSize
	}
	if pageSize < 0 || pageSize > planfixMaxPageSize {
		planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter pageSize: %d, at most %d", pageSize, planfixMaxPageSize))
		return 0, 0, false
	}
	if offset < 0 {
		planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter offset: %d", offset))
		return 0, 0, false
	}
	lo = min(offset, n)
	hi = min(lo+pageSize, n)
	return lo, hi, true
}

// ---- lookups (p.mu held) ----

func (p *Planfix) task(id int64) *PlanfixTask {
	for _, t := range p.tasks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (p *Planfix) contact(id int64) *PlanfixContact {
	for _, c := range p.contacts {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (p *Planfix) user(id int64) *PlanfixUser {
	for _, u := range p.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

func (p *Planfix) process(id int64) *PlanfixProcess {
	for i := range p.processes {
		if p.processes[i].ID == id {
			return &p.processes[i]
		}
	}
	return nil
}

func (p *Planfix) status(processID, statusID int64) (PlanfixStatus, bool) {
	if pr := p.process(processID); pr != nil {
		for _, s := range pr.Statuses {
			if s.ID == statusID {
				return s, true
			}
		}
	}
	return PlanfixStatus{}, false
}

func planfixTemplate(ts []PlanfixTemplate, id int64) (PlanfixTemplate, bool) {
	for _, t := range ts {
		if t.ID == id {
			return t, true
		}
	}
	return PlanfixTemplate{}, false
}

// planfixPerson splits "user:5" / "contact:12"; a bare number is read with kind def.
func planfixPerson(s, def string) (kind string, id int64, ok bool) {
	k, n, found := strings.Cut(s, ":")
	if !found {
		k, n = def, s
	}
	id, err := strconv.ParseInt(n, 10, 64)
	k = strings.ToLower(k)
	return k, id, err == nil && id > 0 && (k == "user" || k == "contact")
}

// normPerson returns the canonical "kind:N" of a reference, and whether it names someone
// who exists.
func (p *Planfix) normPerson(s, def string) (string, bool) {
	kind, id, ok := planfixPerson(s, def)
	if !ok {
		return "", false
	}
	norm := fmt.Sprintf("%s:%d", kind, id)
	return norm, p.personExists(norm)
}

func (p *Planfix) personExists(ref string) bool {
	kind, id, ok := planfixPerson(ref, "")
	switch {
	case !ok:
		return false
	case kind == "user":
		return p.user(id) != nil
	default:
		return p.contact(id) != nil
	}
}

func (p *Planfix) personJSON(ref string) map[string]any {
	out := map[string]any{"id": ref}
	kind, id, _ := planfixPerson(ref, "")
	switch kind {
	case "user":
		if u := p.user(id); u != nil {
			out["name"] = strings.TrimSpace(u.Name + " " + u.Lastname)
		}
	case "contact":
		if c := p.contact(id); c != nil {
			out["name"] = strings.TrimSpace(c.Name + " " + c.Lastname)
		}
	}
	return out
}

// ---- representations ----

func (p *Planfix) taskJSON(t *PlanfixTask) map[string]any {
	st, _ := p.status(t.ProcessID, t.StatusID)
	users := make([]map[string]any, 0, len(t.Assignees))
	for _, a := range t.Assignees {
		users = append(users, p.personJSON(a))
	}
	m := map[string]any{
		"id":             t.ID,
		"name":           t.Name,
		"description":    t.Description,
		"status":         map[string]any{"id": st.ID, "name": st.Name, "color": st.Color, "isActive": st.IsActive},
		"processId":      t.ProcessID,
		"type":           "Task",
		"assigner":       p.personJSON(t.Assigner),
		"assignees":      map[string]any{"users": users, "groups": []any{}},
		"dateTime":       planfixTime(t.Created),
		"isDeleted":      false,
		"sourceObjectId": p.sourceJSON(t.SourceObjectID),
	}
	if t.TemplateID != 0 {
		m["template"] = map[string]any{"id": t.TemplateID}
	}
	if t.Counterparty != "" {
		m["counterparty"] = p.personJSON(t.Counterparty)
	}
	return m
}

func (p *Planfix) contactJSON(c *PlanfixContact) map[string]any {
	phones := make([]map[string]any, 0, len(c.Phones))
	for _, ph := range c.Phones {
		phones = append(phones, map[string]any{"number": ph.Number, "maskedNumber": ph.Number, "type": ph.Type})
	}
	m := map[string]any{
		"id": c.ID, "name": c.Name, "midname": c.Midname, "lastname": c.Lastname, "email": c.Email,
		"phones": phones, "description": c.Description, "isCompany": c.IsCompany, "isDeleted": false,
		"createdDate": planfixTime(c.Created), "sourceObjectId": p.sourceJSON(c.SourceObjectID),
	}
	if c.TemplateID != 0 {
		m["template"] = map[string]any{"id": c.TemplateID}
	}
	return m
}

func (p *Planfix) commentJSON(c *PlanfixComment) map[string]any {
	m := map[string]any{
		"id": c.ID, "description": c.Description, "owner": p.personJSON(c.Owner), "dateTime": planfixTime(c.Created),
		"type": "Comment", "fromType": "Planfix", "isDeleted": false, "isHidden": c.IsHidden, "isPinned": false,
		"files": []any{}, "sourceObjectId": p.sourceJSON(c.SourceObjectID),
	}
	if c.TaskID != 0 {
		m["task"] = map[string]any{"id": c.TaskID}
	}
	if c.ContactID != 0 {
		m["contact"] = p.personJSON(fmt.Sprintf("contact:%d", c.ContactID))
	}
	return m
}

func planfixUserJSON(u *PlanfixUser) map[string]any {
	status := "Active"
	if u.Inactive {
		status = "Inactive"
	}
	return map[string]any{
		"id": u.ID, "name": u.Name, "midname": "", "lastname": u.Lastname, "email": u.Email,
		"secondaryEmails": []string{}, "role": u.Role, "status": status, "isDeleted": false,
	}
}

// ---- handlers ----

func (p *Planfix) servePing(w http.ResponseWriter, _ *http.Request) {
	planfixJSON(w, http.StatusOK, map[string]any{"result": "success"})
}

// planfixFilter is one "complex filter" of a list call.
type planfixFilter struct {
	Type     int             `json:"type"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
	Field    int64           `json:"field"`
}

type planfixListBody struct {
	Offset     int             `json:"offset"`
	PageSize   int             `json:"pageSize"`
	FilterID   string          `json:"filterId"`
	Filters    []planfixFilter `json:"filters"`
	Fields     string          `json:"fields"`
	OnlyActive bool            `json:"onlyActive"`
}

// planfixMatch applies a filter's operator (equal, notequal) to whether the value matched.
func planfixMatch(f planfixFilter, matched bool) (bool, error) {
	switch f.Operator {
	case "equal":
		return matched, nil
	case "notequal":
		return !matched, nil
	}
	return false, fmt.Errorf("Wrong value of parameter operator: %q is not supported by the sandbox", f.Operator)
}

// planfixIDs reads a filter value that is a number, a numeric string or a list of them.
func planfixIDs(raw json.RawMessage) ([]int64, error) {
	var list []planfixID
	if err := json.Unmarshal(raw, &list); err == nil {
		out := make([]int64, len(list))
		for i, v := range list {
			out[i] = int64(v)
		}
		return out, nil
	}
	var one planfixID
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, fmt.Errorf("Wrong value of parameter value: %s", raw)
	}
	return []int64{int64(one)}, nil
}

func planfixString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("Wrong value of parameter value: a string is expected, got %s", raw)
	}
	return s, nil
}

func (p *Planfix) taskMatches(t *PlanfixTask, filters []planfixFilter) (bool, error) {
	for _, f := range filters {
		var hit bool
		switch f.Type {
		case 1, 2: // assigner, assignee
			s, err := planfixString(f.Value)
			if err != nil {
				return false, err
			}
			ref, _ := p.normPerson(s, "user")
			if f.Type == 1 {
				hit = ref != "" && t.Assigner == ref
			} else {
				hit = ref != "" && slices.Contains(t.Assignees, ref)
			}
		case 7: // counterparty: a contact number (the spec's example) or a PersonID
			var s string
			if n, err := planfixIDs(f.Value); err == nil && len(n) == 1 {
				s = fmt.Sprintf("contact:%d", n[0])
			} else if s, err = planfixString(f.Value); err != nil {
				return false, err
			}
			ref, _ := p.normPerson(s, "contact")
			hit = ref != "" && t.Counterparty == ref
		case 10, 24, 51, 57: // status, process, template, number
			ids, err := planfixIDs(f.Value)
			if err != nil {
				return false, err
			}
			v := map[int]int64{10: t.StatusID, 24: t.ProcessID, 51: t.TemplateID, 57: t.ID}[f.Type]
			hit = slices.Contains(ids, v)
		default:
			return false, fmt.Errorf("Wrong value of parameter type: task filter %d is not supported by the sandbox", f.Type)
		}
		ok, err := planfixMatch(f, hit)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func planfixDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func contactMatches(c *PlanfixContact, filters []planfixFilter) (bool, error) {
	for _, f := range filters {
		var hit bool
		switch f.Type {
		case 4001, 4003, 4005, 4026:
			s, err := planfixString(f.Value)
			if err != nil {
				return false, err
			}
			s = strings.TrimSpace(s)
			switch f.Type {
			case 4001: // part of name
				hit = s != "" && strings.Contains(strings.ToLower(c.Name+" "+c.Midname+" "+c.Lastname), strings.ToLower(s))
			case 4003: // phone
				for _, ph := range c.Phones {
					hit = hit || (planfixDigits(s) != "" && planfixDigits(ph.Number) == planfixDigits(s))
				}
			case 4005: // part of email
				hit = s != "" && strings.Contains(strings.ToLower(c.Email), strings.ToLower(s))
			case 4026: // email
				hit = s != "" && strings.EqualFold(c.Email, s)
			}
		case 4016: // template
			ids, err := planfixIDs(f.Value)
			if err != nil {
				return false, err
			}
			hit = slices.Contains(ids, c.TemplateID)
		default:
			return false, fmt.Errorf("Wrong value of parameter type: contact filter %d is not supported by the sandbox", f.Type)
		}
		ok, err := planfixMatch(f, hit)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (p *Planfix) serveContactList(w http.ResponseWriter, r *http.Request) {
	var b planfixListBody
	if !planfixDecode(w, r, &b) {
		return
	}
	if b.FilterID != "" {
		planfixFail(w, http.StatusBadRequest, 41, "Wrong value of parameter filterId: saved filters are not supported by the sandbox")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var matched []*PlanfixContact
	for _, c := range p.contacts {
		ok, err := contactMatches(c, b.Filters)
		if err != nil {
			planfixFail(w, http.StatusBadRequest, 41, err.Error())
			return
		}
		if ok && !c.IsCompany {
			matched = append(matched, c)
		}
	}
	lo, hi, ok := planfixPage(w, b.Offset, b.PageSize, len(matched))
	if !ok {
		return
	}
	fields := planfixFields(b.Fields)
	out := make([]map[string]any, 0, hi-lo)
	for _, c := range matched[lo:hi] {
		out = append(out, planfixPick(p.contactJSON(c), fields))
	}
	planfixOK(w, "contacts", out)
}

type planfixPhoneBody struct {
	Number string `json:"number"`
	Type   int    `json:"type"`
}

type planfixContactBody struct {
	Template       *planfixRef        `json:"template"`
	SourceObjectID *string            `json:"sourceObjectId"`
	Name           *string            `json:"name"`
	Midname        *string            `json:"midname"`
	Lastname       *string            `json:"lastname"`
	Email          *string            `json:"email"`
	Description    *string            `json:"description"`
	Phones         []planfixPhoneBody `json:"phones"`
	IsCompany      bool               `json:"isCompany"`
}

func planfixPhones(in []planfixPhoneBody) []PlanfixPhone {
	out := make([]PlanfixPhone, 0, len(in))
	for _, ph := range in {
		out = append(out, PlanfixPhone{Number: ph.Number, Type: ph.Type})
	}
	return out
}

func planfixStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (p *Planfix) serveContactCreate(w http.ResponseWriter, r *http.Request) {
	var b planfixContactBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &PlanfixContact{SourceObjectID: planfixStr(b.SourceObjectID), Name: planfixStr(b.Name), Midname: planfixStr(b.Midname),
		Lastname: planfixStr(b.Lastname), Email: strings.TrimSpace(planfixStr(b.Email)), Description: planfixStr(b.Description),
		Phones: planfixPhones(b.Phones), IsCompany: b.IsCompany, Created: p.now()}
	if b.Template != nil {
		if _, ok := planfixTemplate(p.contactTemplates, int64(b.Template.ID)); !ok {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Template not found by id %d", b.Template.ID))
			return
		}
		c.TemplateID = int64(b.Template.ID)
	}
	if c.Name == "" && c.Lastname == "" && c.Email == "" {
		planfixFail(w, http.StatusBadRequest, 40, "Missing parameter name")
		return
	}
	c.ID = p.nextContact
	p.nextContact++
	p.contacts = append(p.contacts, c)
	planfixCreated(w, c.ID)
}

func (p *Planfix) serveContactGet(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := planfixLookup(w, r, "contact", p.contact, http.StatusNotFound, 2000, "Contact not found by id ")
	if c == nil {
		return
	}
	planfixOK(w, "contact", planfixPick(p.contactJSON(c), planfixFields(r.URL.Query().Get("fields"))))
}

// planfixFailures answers 200 with the fields an update did not change: one failure as an
// object (as in the spec's example), several as an array (as in the spec's schema).
func planfixFailures(w http.ResponseWriter, fs []map[string]string) {
	var v any = fs
	if len(fs) == 1 {
		v = fs[0]
	}
	planfixJSON(w, http.StatusOK, map[string]any{"result": "success", "failures": v})
}

func planfixFailure(field string) map[string]string {
	return map[string]string{"field": field, "error": planfixFieldChangeFailedMsg}
}

func (p *Planfix) serveContactUpdate(w http.ResponseWriter, r *http.Request) {
	var b planfixContactBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := planfixLookup(w, r, "contact", p.contact, http.StatusNotFound, 2000, "Contact for update not found by id ")
	if c == nil {
		return
	}
	var failures []map[string]string
	if b.Template != nil {
		if _, ok := planfixTemplate(p.contactTemplates, int64(b.Template.ID)); ok {
			c.TemplateID = int64(b.Template.ID)
		} else {
			failures = append(failures, planfixFailure("template"))
		}
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.SourceObjectID, b.SourceObjectID)
	set(&c.Name, b.Name)
	set(&c.Midname, b.Midname)
	set(&c.Lastname, b.Lastname)
	set(&c.Email, b.Email)
	set(&c.Description, b.Description)
	if b.Phones != nil {
		c.Phones = planfixPhones(b.Phones)
	}
	if len(failures) > 0 {
		planfixFailures(w, failures)
		return
	}
	planfixJSON(w, http.StatusOK, map[string]any{"result": "success"})
}

type planfixCommentBody struct {
	SourceObjectID *string            `json:"sourceObjectId"`
	Description    string             `json:"description"`
	Owner          *planfixPersonRef  `json:"owner"`
	IsHidden       bool               `json:"isHidden"`
	Files          []planfixRef       `json:"files"`
	Recipients     *planfixRecipients `json:"recipients"`
}

// planfixRecipients is a comment's NotifiedRequest. The spec's schema makes roles one
// string and its example an array: the sandbox takes both.
type planfixRecipients struct {
	Users  []planfixPersonRef `json:"users"`
	Groups []planfixRef       `json:"groups"`
	Roles  planfixStrings     `json:"roles"`
}

// planfixStrings is a list of strings that may arrive as one string.
type planfixStrings []string

func (s *planfixStrings) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = planfixStrings{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

var planfixRoles = []string{"assignee", "participant", "auditor", "assigner"}

// recipients validates a comment's recipients (p.mu held) and lists them as
// PlanfixComment.Recipients does; it writes the error answer and returns false on a
// person or role Planfix would refuse.
func (p *Planfix) recipients(w http.ResponseWriter, r *planfixRecipients) ([]string, bool) {
	if r == nil {
		return nil, true
	}
	var out []string
	for _, u := range r.Users {
		norm, exists := p.normPerson(string(u.ID), "user")
		if !exists {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter recipients: %q not found", u.ID))
			return nil, false
		}
		out = append(out, norm)
	}
	for _, g := range r.Groups {
		out = append(out, fmt.Sprintf("group:%d", g.ID))
	}
	for _, role := range r.Roles {
		if !slices.Contains(planfixRoles, role) {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter recipients.roles: %q", role))
			return nil, false
		}
		out = append(out, "role:"+role)
	}
	return out, true
}

// addComment validates and stores a comment from a request body (p.mu held).
func (p *Planfix) addComment(w http.ResponseWriter, b planfixCommentBody, taskID, contactID int64) {
	owner := fmt.Sprintf("user:%d", PlanfixRobotUserID)
	if b.Owner != nil {
		norm, exists := p.normPerson(string(b.Owner.ID), "user")
		if !exists {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter owner: %q not found", b.Owner.ID))
			return
		}
		owner = norm
	}
	if strings.TrimSpace(b.Description) == "" && len(b.Files) == 0 {
		planfixFail(w, http.StatusBadRequest, 40, "Missing parameter description")
		return
	}
	recipients, ok := p.recipients(w, b.Recipients)
	if !ok {
		return
	}
	c := &PlanfixComment{ID: p.nextComment, TaskID: taskID, ContactID: contactID, SourceObjectID: planfixStr(b.SourceObjectID),
		Description: b.Description, Owner: owner, IsHidden: b.IsHidden, Recipients: recipients, Created: p.now()}
	p.nextComment++
	p.comments = append(p.comments, c)
	planfixCreated(w, c.ID)
}

func (p *Planfix) serveContactComment(w http.ResponseWriter, r *http.Request) {
	var b planfixCommentBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := planfixLookup(w, r, "contact", p.contact, http.StatusNotFound, 2000, "Contact not found by id "); c != nil {
		p.addComment(w, b, 0, c.ID)
	}
}

func (p *Planfix) serveTemplates(w http.ResponseWriter, r *http.Request, ts []PlanfixTemplate) {
	q := r.URL.Query()
	atoi := func(k string) (int, bool) {
		s := q.Get(k)
		if s == "" {
			return 0, true
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	offset, ok1 := atoi("offset")
	size, ok2 := atoi("pageSize")
	if !ok1 || !ok2 {
		planfixFail(w, http.StatusBadRequest, 41, "Wrong value of parameter offset or pageSize")
		return
	}
	lo, hi, ok := planfixPage(w, offset, size, len(ts))
	if !ok {
		return
	}
	fields := planfixFields(q.Get("fields"))
	out := make([]map[string]any, 0, hi-lo)
	for _, t := range ts[lo:hi] {
		m := map[string]any{"id": t.ID, "name": t.Name}
		if t.ProcessID != 0 {
			m["processId"] = t.ProcessID
		}
		out = append(out, planfixPick(m, fields))
	}
	planfixOK(w, "templates", out)
}

func (p *Planfix) serveContactTemplates(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.URL.Query().Get("isCompany") == "true" {
		p.serveTemplates(w, r, nil) // the sandbox has no company templates
		return
	}
	p.serveTemplates(w, r, p.contactTemplates)
}

func (p *Planfix) serveTaskTemplates(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveTemplates(w, r, p.taskTemplates)
}

type planfixTaskBody struct {
	SourceObjectID *string           `json:"sourceObjectId"`
	Name           *string           `json:"name"`
	Description    *string           `json:"description"`
	Template       *planfixRef       `json:"template"`
	Status         *planfixRef       `json:"status"`
	ProcessID      *planfixID        `json:"processId"`
	Assigner       *planfixPersonRef `json:"assigner"`
	Assignees      *planfixPeopleRef `json:"assignees"`
	Counterparty   *planfixPersonRef `json:"counterparty"`
}

// people checks a list of assignees (p.mu held): it returns the canonical references, or
// the first one that does not exist.
func (p *Planfix) people(in *planfixPeopleRef) ([]string, string) {
	var out []string
	for _, u := range in.Users {
		norm, ok := p.normPerson(string(u.ID), "user")
		if !ok {
			return nil, string(u.ID)
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	if len(in.Groups) > 0 {
		return nil, fmt.Sprintf("group:%d", in.Groups[0].ID) // the sandbox has no groups
	}
	return out, ""
}

func (p *Planfix) serveTaskCreate(w http.ResponseWriter, r *http.Request) {
	var b planfixTaskBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &PlanfixTask{SourceObjectID: planfixStr(b.SourceObjectID), Name: planfixStr(b.Name), Description: planfixStr(b.Description),
		ProcessID: PlanfixProcessID, Assigner: fmt.Sprintf("user:%d", PlanfixRobotUserID), Created: p.now()}
	if b.Template != nil {
		tpl, ok := planfixTemplate(p.taskTemplates, int64(b.Template.ID))
		if !ok {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Template not find by id %d", b.Template.ID))
			return
		}
		t.TemplateID, t.ProcessID = tpl.ID, tpl.ProcessID
		if t.Name == "" {
			t.Name = tpl.Name
		}
	}
	if b.ProcessID != nil {
		if p.process(int64(*b.ProcessID)) == nil {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Process not find by id %d", *b.ProcessID))
			return
		}
		t.ProcessID = int64(*b.ProcessID)
	}
	t.StatusID = p.process(t.ProcessID).Statuses[0].ID
	if b.Status != nil {
		if _, ok := p.status(t.ProcessID, int64(b.Status.ID)); !ok {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Status not find by id %d", b.Status.ID)) // the spec's wording
			return
		}
		t.StatusID = int64(b.Status.ID)
	}
	if t.Name == "" {
		planfixFail(w, http.StatusBadRequest, 40, "Missing parameter name")
		return
	}
	// Whether Planfix accepts a contact as the assigner on creation is unverified
	// (PLANFIX.md); the sandbox accepts any existing employee or contact, unless told to
	// refuse a contact (SetRefuseContactAsAssigner) or to keep the robot user instead
	// (SetKeepUserAsAssigner).
	if b.Assigner != nil {
		norm, ok := p.normPerson(string(b.Assigner.ID), "user")
		if !ok {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter assigner: %q not found", b.Assigner.ID))
			return
		}
		contact := strings.HasPrefix(norm, "contact:")
		switch {
		case contact && p.refuseContact:
			planfixFail(w, http.StatusBadRequest, 41, "Неверное значение параметра: постановщиком задачи может быть только сотрудник")
			return
		case contact && p.keepUser: // t.Assigner stays the robot user
		default:
			t.Assigner = norm
		}
	}
	if b.Assignees != nil {
		people, bad := p.people(b.Assignees)
		if bad != "" {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter assignees: %q not found", bad))
			return
		}
		t.Assignees = people
	}
	if b.Counterparty != nil {
		norm, ok := p.normPerson(string(b.Counterparty.ID), "contact")
		if !ok {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter counterparty: %q not found", b.Counterparty.ID))
			return
		}
		t.Counterparty = norm
	}
	t.ID = p.nextTask
	p.nextTask++
	p.tasks = append(p.tasks, t)
	planfixCreated(w, t.ID)
}

func (p *Planfix) serveTaskGet(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := planfixLookup(w, r, "", p.task, http.StatusNotFound, 1000, "Task not found by id ")
	if t == nil {
		return
	}
	planfixOK(w, "task", planfixPick(p.taskJSON(t), planfixFields(r.URL.Query().Get("fields"))))
}

func (p *Planfix) serveTaskUpdate(w http.ResponseWriter, r *http.Request) {
	var b planfixTaskBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := planfixLookup(w, r, "", p.task, http.StatusNotFound, 1000, "Task for update not found by id ")
	if t == nil {
		return
	}
	// Fields that cannot change are reported in "failures" with 200, as the spec shows;
	// the others change.
	var failures []map[string]string
	if b.Template != nil {
		if tpl, ok := planfixTemplate(p.taskTemplates, int64(b.Template.ID)); ok {
			t.TemplateID = tpl.ID
		} else {
			failures = append(failures, planfixFailure("template"))
		}
	}
	if b.Status != nil {
		if _, ok := p.status(t.ProcessID, int64(b.Status.ID)); ok {
			t.StatusID = int64(b.Status.ID)
		} else {
			failures = append(failures, planfixFailure("status"))
		}
	}
	if b.Assigner != nil {
		if norm, ok := p.normPerson(string(b.Assigner.ID), "user"); ok {
			t.Assigner = norm
		} else {
			failures = append(failures, planfixFailure("assigner"))
		}
	}
	if b.Assignees != nil {
		// Whether Planfix replaces or merges the assignees is unverified (PLANFIX.md);
		// the sandbox replaces them.
		if people, bad := p.people(b.Assignees); bad == "" {
			t.Assignees = people
		} else {
			failures = append(failures, planfixFailure("assignees"))
		}
	}
	if b.Counterparty != nil {
		if norm, ok := p.normPerson(string(b.Counterparty.ID), "contact"); ok {
			t.Counterparty = norm
		} else {
			failures = append(failures, planfixFailure("counterparty"))
		}
	}
	if b.Name != nil {
		t.Name = *b.Name
	}
	if b.Description != nil {
		t.Description = *b.Description
	}
	if b.SourceObjectID != nil {
		t.SourceObjectID = *b.SourceObjectID
	}
	if p.accept202 > 0 {
		p.accept202--
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if len(failures) > 0 {
		planfixFailures(w, failures)
		return
	}
	planfixJSON(w, http.StatusOK, map[string]any{"result": "success"})
}

func (p *Planfix) serveTaskList(w http.ResponseWriter, r *http.Request) {
	var b planfixListBody
	if !planfixDecode(w, r, &b) {
		return
	}
	if b.FilterID != "" {
		planfixFail(w, http.StatusBadRequest, 41, "Wrong value of parameter filterId: saved filters are not supported by the sandbox")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var matched []*PlanfixTask
	for _, t := range p.tasks {
		ok, err := p.taskMatches(t, b.Filters)
		if err != nil {
			planfixFail(w, http.StatusBadRequest, 41, err.Error())
			return
		}
		if ok {
			matched = append(matched, t)
		}
	}
	lo, hi, ok := planfixPage(w, b.Offset, b.PageSize, len(matched))
	if !ok {
		return
	}
	fields := planfixFields(b.Fields)
	out := make([]map[string]any, 0, hi-lo)
	for _, t := range matched[lo:hi] {
		out = append(out, planfixPick(p.taskJSON(t), fields))
	}
	planfixOK(w, "tasks", out)
}

func (p *Planfix) serveTaskComment(w http.ResponseWriter, r *http.Request) {
	var b planfixCommentBody
	if !planfixDecode(w, r, &b) || !planfixCheckSource(w, b.SourceObjectID) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := planfixLookup(w, r, "", p.task, http.StatusNotFound, 1000, "Task not found by id "); t != nil {
		p.addComment(w, b, t.ID, 0)
	}
}

type planfixCommentListBody struct {
	Offset      int    `json:"offset"`
	PageSize    int    `json:"pageSize"`
	Fields      string `json:"fields"`
	TypeList    string `json:"typeList"`
	ResultOrder []struct {
		Field     string `json:"field"`
		Filed     string `json:"filed"` // the spec's schema spells it so; its example says "field"
		Direction string `json:"direction"`
	} `json:"resultOrder"`
}

func (p *Planfix) serveTaskCommentList(w http.ResponseWriter, r *http.Request) {
	var b planfixCommentListBody
	if !planfixDecode(w, r, &b) {
		return
	}
	switch b.TypeList {
	case "", "Comments", "All", "New", "Deleted":
	default:
		planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter typeList: %q", b.TypeList))
		return
	}
	// The first order decides: ids and times grow together in the sandbox.
	desc := false
	for i, o := range b.ResultOrder {
		field := o.Field
		if field == "" {
			field = o.Filed
		}
		if field != "id" && field != "dateTime" {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter resultOrder: field %q", field))
			return
		}
		if o.Direction != "Asc" && o.Direction != "Desc" {
			planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter resultOrder: direction %q", o.Direction))
			return
		}
		if i == 0 {
			desc = o.Direction == "Desc"
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The spec's example answers a missing task here with 500 and code 1000.
	t := planfixLookup(w, r, "", p.task, http.StatusInternalServerError, 1000, "Task not found by id ")
	if t == nil {
		return
	}
	id := t.ID
	var list []*PlanfixComment
	if b.TypeList != "Deleted" { // the sandbox never deletes
		for _, c := range p.comments {
			if c.TaskID == id {
				list = append(list, c)
			}
		}
	}
	if desc {
		slices.Reverse(list)
	}
	lo, hi, ok := planfixPage(w, b.Offset, b.PageSize, len(list))
	if !ok {
		return
	}
	fields := planfixFields(b.Fields)
	out := make([]map[string]any, 0, hi-lo)
	for _, c := range list[lo:hi] {
		out = append(out, planfixPick(p.commentJSON(c), fields))
	}
	planfixOK(w, "comments", out)
}

func (p *Planfix) serveCommentGet(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	comment := func(id int64) *PlanfixComment {
		for _, x := range p.comments {
			if x.ID == id {
				return x
			}
		}
		return nil
	}
	// Code 5000 is PLANFIX.md's; the spec documents no error for this call.
	c := planfixLookup(w, r, "", comment, http.StatusNotFound, 5000, "Comment not found by id ")
	if c == nil {
		return
	}
	planfixOK(w, "comment", planfixPick(p.commentJSON(c), planfixFields(r.URL.Query().Get("fields"))))
}

func (p *Planfix) serveUserGet(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// As the spec's example: 400 with code 4000.
	u := planfixLookup(w, r, "user", p.user, http.StatusBadRequest, 4000, "Employee not found by id - ")
	if u == nil {
		return
	}
	planfixOK(w, "user", planfixPick(planfixUserJSON(u), planfixFields(r.URL.Query().Get("fields"))))
}

func (p *Planfix) serveUserList(w http.ResponseWriter, r *http.Request) {
	var b planfixListBody
	if !planfixDecode(w, r, &b) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var list []*PlanfixUser
	for _, u := range p.users {
		if b.OnlyActive && u.Inactive {
			continue
		}
		keep := true
		for _, f := range b.Filters {
			if f.Type != 9003 { // external email
				planfixFail(w, http.StatusBadRequest, 41, fmt.Sprintf("Wrong value of parameter type: user filter %d is not supported by the sandbox", f.Type))
				return
			}
			s, err := planfixString(f.Value)
			if err != nil {
				planfixFail(w, http.StatusBadRequest, 41, err.Error())
				return
			}
			hit, err := planfixMatch(f, strings.EqualFold(u.Email, strings.TrimSpace(s)))
			if err != nil {
				planfixFail(w, http.StatusBadRequest, 41, err.Error())
				return
			}
			keep = keep && hit
		}
		if keep {
			list = append(list, u)
		}
	}
	lo, hi, ok := planfixPage(w, b.Offset, b.PageSize, len(list))
	if !ok {
		return
	}
	fields := planfixFields(b.Fields)
	out := make([]map[string]any, 0, hi-lo)
	for _, u := range list[lo:hi] {
		out = append(out, planfixPick(planfixUserJSON(u), fields))
	}
	planfixOK(w, "users", out)
}

func (p *Planfix) serveProcesses(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The spec's example lists id and name without "fields"; the sandbox does the same.
	fields := planfixFields(r.URL.Query().Get("fields"))
	all := r.URL.Query().Get("fields") == ""
	out := make([]map[string]any, 0, len(p.processes))
	for _, pr := range p.processes {
		m := map[string]any{"id": pr.ID, "name": pr.Name}
		if !all {
			m = planfixPick(m, fields)
		}
		out = append(out, m)
	}
	planfixOK(w, "processes", out)
}

func (p *Planfix) serveStatuses(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Undocumented; the sandbox answers like a wrong parameter value.
	pr := planfixLookup(w, r, "", p.process, http.StatusBadRequest, 41, "Process not find by id ")
	if pr == nil {
		return
	}
	fields := planfixFields(r.URL.Query().Get("fields"))
	all := r.URL.Query().Get("fields") == ""
	out := make([]map[string]any, 0, len(pr.Statuses))
	for _, s := range pr.Statuses {
		m := map[string]any{"id": s.ID, "name": s.Name, "color": s.Color, "isActive": s.IsActive}
		if !all {
			m = planfixPick(m, fields)
		}
		out = append(out, m)
	}
	planfixOK(w, "statuses", out)
}
