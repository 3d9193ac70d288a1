// Package planfix is a client for the parts of Planfix's REST API the bridge uses
// (docs/PLANFIX.md lists them; reference/planfix-rest-api.swagger.json is the spec).
//
// Every call goes through one Limiter (Planfix allows one request per second per account,
// across all of the bridge's processes) and returns a *Error on failure, whose Kind and
// Retryable tell a permanent failure (bad token, unknown template, unpaid account) from
// one worth retrying (5xx, 429, network, the daily limit). The client itself never
// retries: the caller (a Temporal activity) does, with backoff. An error that is not a
// *Error comes from the limiter (a database failure) or from the caller's context, and is
// the caller's to judge.
//
// The token is a secrets.String: it is sent only in the Authorization header and never
// appears in an error, a log line or a metric.
package planfix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/remote"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// DefaultTimeout bounds one HTTP exchange (or the caller's deadline, if sooner).
const DefaultTimeout = 15 * time.Second

// MaxPageSize is the most items Planfix returns per page of a list.
const MaxPageSize = 100

// maxResponseBody caps what is read of one answer.
const maxResponseBody = 16 << 20

// Fields requested by default (Planfix returns only the fields asked for).
const (
	DefaultTaskFields    = "id,name,description,status,processId,template,assigner,assignees,counterparty,dateTime,isDeleted,sourceObjectId"
	DefaultContactFields = "id,template,name,midname,lastname,email,phones,description,isCompany,isDeleted,sourceObjectId"
	// DefaultCommentFields are the fields of GET /comment/{id} (PLANFIX.md's list plus
	// what tells who wrote it and whether it still counts).
	DefaultCommentFields = "id,description,owner,dateTime,task,files,contact,type,fromType,isDeleted,isHidden"
	// DefaultCommentListFields adds sourceObjectId, which the spec lists for
	// POST /task/{id}/comments/list but not for GET /comment/{id}.
	DefaultCommentListFields = DefaultCommentFields + ",sourceObjectId"
	DefaultUserFields        = "id,name,midname,lastname,email,secondaryEmails,role,status,isDeleted"
	DefaultStatusFields      = "id,name,color,isActive"
)

// Config is what a client needs to reach one Planfix account.
type Config struct {
	// BaseURL is the account's REST root: the account URL plus "/rest", such as
	// https://example.planfix.com/rest.
	BaseURL string
	// Token is the REST API token (Account management, Integrations, REST API).
	Token secrets.String
	// Observer, when not nil, is told the outcome and X-RateLimit-Remaining of every
	// request (see Metrics).
	Observer Observer
	// Timeout bounds one HTTP exchange (the caller's deadline still applies if sooner);
	// 0 means DefaultTimeout.
	Timeout time.Duration
}

// LogValue implements slog.LogValuer: the base URL (without any user info) and the token
// redacted.
func (c Config) LogValue() slog.Value {
	base := c.BaseURL
	if u, err := url.Parse(c.BaseURL); err == nil {
		base = u.Redacted()
	}
	return slog.GroupValue(slog.String("base_url", base), slog.Any("token", c.Token))
}

// Limiter spaces requests to one Planfix account. Implementations must be safe for
// concurrent use; postgres.RateLimiter holds the limit across processes.
type Limiter interface {
	// Wait blocks until the caller may send one request to account. It returns an error
	// when ctx ends first or the limiter fails; the request must not be sent then.
	Wait(ctx context.Context, account string) error
	// Block keeps every Wait for account from returning before until (the daily limit
	// was reached).
	Block(ctx context.Context, account string, until time.Time) error
}

// Observer is told about requests, to export metrics. Its methods must be fast and safe
// for concurrent use.
type Observer interface {
	// ObserveRemaining receives X-RateLimit-Remaining of every answer that carries it.
	ObserveRemaining(account string, remaining int)
	// ObserveRequest is called once per HTTP request with its outcome: "ok", or the
	// error's Kind without the "planfix." prefix ("network", "unavailable", ...).
	ObserveRequest(account, outcome string)
}

// Client calls one Planfix account. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string // BaseURL without a trailing slash
	account string // the base URL's host, the key of rate limiting and metrics
	cfgErr  *Error
	remote  *remote.Caller
	limiter Limiter
	now     func() time.Time
}

// NewClient returns a client for cfg. httpClient nil means http.DefaultClient (the client
// is copied, to turn off following redirects); limiter nil means no rate limiting (tests
// only). BaseURL should be https (http is accepted for the sandbox). A BaseURL or Token
// that cannot work is reported by every call as a permanent *Error, without a request
// being sent.
func NewClient(cfg Config, httpClient *http.Client, limiter Limiter) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	// Redirects are not followed (remote.NewCaller): a 3xx answer is reported with where
	// it points.
	c := &Client{cfg: cfg, remote: remote.NewCaller(httpClient, cfg.Timeout, maxResponseBody), limiter: limiter, now: time.Now}
	c.base = strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(c.base)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		c.cfgErr = &Error{Kind: KindBadRequest, Message: "the Planfix account URL is not valid: it must look like https://example.planfix.com/rest"}
	case cfg.Token.Reveal() == "":
		c.cfgErr = &Error{Kind: KindUnauthorized, Message: "no Planfix token is set: create a REST API token in Planfix, Account management, Integrations, REST API, and add it to the integration"}
	}
	if u != nil {
		c.account = strings.ToLower(u.Host)
	}
	return c
}

// Account returns the account key used for rate limiting and metrics: the base URL's host.
func (c *Client) Account() string { return c.account }

// String names the client by its account; the token is not printed even with %+v.
func (c *Client) String() string { return "planfix.Client(" + c.account + ")" }

// LogValue implements slog.LogValuer like Config's.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }

// call is one request.
type call struct {
	op     string // for messages: "create task"
	method string
	path   string // below BaseURL, starting with "/"
	query  url.Values
	body   any // JSON-encoded when not nil
}

// do sends one request and decodes a 2xx answer's JSON into out (when out is not nil).
// It returns the answer's status.
func (c *Client) do(ctx context.Context, r call, out any) (int, error) {
	if c.cfgErr != nil {
		e := *c.cfgErr
		e.Op = r.op
		return 0, &e
	}
	var payload []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("%s: encode request: %w", r.op, err)
		}
		payload = b
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx, c.account); err != nil {
			return 0, fmt.Errorf("%s: wait for the planfix rate limit: %w", r.op, err)
		}
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	header := http.Header{
		"Authorization": {"Bearer " + c.cfg.Token.Reveal()},
		"Accept":        {"application/json"},
		"User-Agent":    {"chatrabridge"},
	}
	if payload != nil {
		header.Set("Content-Type", "application/json")
	}
	// Every exchange is bounded, even inside a long activity deadline: a hung Planfix
	// must fail this request and let the activity retry, not stall it for minutes.
	resp, failure := c.remote.Do(ctx, r.method, u, header, payload)
	if failure != nil {
		if failure.Unbuildable {
			return 0, c.fail(&Error{Op: r.op, Kind: KindBadRequest, Message: "cannot build the request: check the Planfix account URL"})
		}
		return 0, c.fail(c.networkError(r.op, failure))
	}
	c.observeRemaining(resp.Header)
	body := resp.Body
	if resp.ReadErr != nil {
		return resp.Status, c.fail(c.networkError(r.op, &remote.Failure{Cause: resp.ReadErr, TimedOut: errors.Is(resp.ReadErr, context.DeadlineExceeded)}))
	}

	if resp.Status < 200 || resp.Status > 299 {
		return resp.Status, c.fail(c.answerError(ctx, r.op, resp, body))
	}
	// A 2xx answer may still say {"result":"fail"}.
	if fb := parseFailBody(body); strings.EqualFold(fb.result, "fail") {
		return resp.Status, c.fail(c.answerError(ctx, r.op, resp, body))
	}
	if out != nil && resp.Status != http.StatusAccepted && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.Status, c.fail(&Error{Op: r.op, HTTPStatus: resp.Status, Kind: KindUnavailable, Retryable: true, Err: err,
				Message: fmt.Sprintf("planfix answered (HTTP %d) with a body that is not the expected JSON: check that the account URL is right and ends in /rest", resp.Status)})
		}
	}
	c.observe("ok")
	return resp.Status, nil
}

// answerError classifies a failed answer and, on the daily limit, blocks the account.
func (c *Client) answerError(ctx context.Context, op string, resp remote.Answer, body []byte) *Error {
	now := c.now()
	e := newError(errorInfo{op: op, status: resp.Status, body: body, header: resp.Header, now: now, scrub: c.scrub})
	if e.Kind == KindDailyLimit && c.limiter != nil {
		// A failed Block is not reported: the error below already makes the caller wait,
		// and the next call that meets the limit blocks again.
		_ = c.limiter.Block(ctx, c.account, now.Add(e.RetryAfter))
	}
	return e
}

func (c *Client) networkError(op string, f *remote.Failure) *Error {
	msg := "cannot reach planfix at " + c.account
	cause := f.Cause
	switch {
	case f.TimedOut:
		msg = "planfix at " + c.account + " did not answer in time"
		cause = context.DeadlineExceeded
	case f.Canceled:
		msg = "the call to planfix at " + c.account + " was cancelled"
		cause = context.Canceled
	}
	msg += " (" + c.scrub(excerpt(f.Cause.Error())) + "): check the account URL and the network; the call is retried"
	return &Error{Op: op, Kind: KindNetwork, Retryable: true, Message: msg, Err: scrubbedError{err: cause, scrub: c.scrub}}
}

// fail counts the failed request and returns e.
func (c *Client) fail(e *Error) *Error {
	c.observe(strings.TrimPrefix(e.Kind, "planfix."))
	return e
}

func (c *Client) observe(outcome string) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.ObserveRequest(c.account, outcome)
	}
}

func (c *Client) observeRemaining(h http.Header) {
	if c.cfg.Observer == nil {
		return
	}
	v := strings.TrimSpace(h.Get("X-RateLimit-Remaining"))
	if v == "" {
		return
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		c.cfg.Observer.ObserveRemaining(c.account, n)
	}
}

// scrub removes the token from text that came from elsewhere.
func (c *Client) scrub(s string) string {
	return remote.Scrub(s, c.cfg.Token.Reveal())
}

// scrubbedError wraps a cause so that its text cannot carry the token, while errors.Is
// and errors.As still reach it.
type scrubbedError struct {
	err   error
	scrub func(string) string
}

func (s scrubbedError) Error() string { return s.scrub(s.err.Error()) }
func (s scrubbedError) Unwrap() error { return s.err }

// created is the answer of a create call.
type created struct {
	ID flexInt `json:"id"`
}

func (c *Client) create(ctx context.Context, op, path string, body any) (int64, error) {
	var out created
	if _, err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: body}, &out); err != nil {
		return 0, err
	}
	if out.ID <= 0 {
		return 0, c.fail(&Error{Op: op, HTTPStatus: http.StatusCreated, Kind: KindUnavailable, Retryable: true,
			Message: "planfix answered without the id of what it created; the call is retried"})
	}
	return int64(out.ID), nil
}

// updated is the answer of an update call.
type updated struct {
	Failures failureList `json:"failures"`
}

func (c *Client) update(ctx context.Context, op, path string, query url.Values, body any) (UpdateResult, error) {
	var out updated
	status, err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, query: query, body: body}, &out)
	if err != nil {
		return UpdateResult{}, err
	}
	res := UpdateResult{Accepted: status == http.StatusAccepted, Failures: out.Failures}
	if len(res.Failures) > 0 {
		fields := make([]string, 0, len(res.Failures))
		for _, f := range res.Failures {
			fields = append(fields, fmt.Sprintf("%s (%s)", f.Field, c.scrub(excerpt(f.Error))))
		}
		names := make([]string, 0, len(res.Failures))
		for _, f := range res.Failures {
			names = append(names, f.Field)
		}
		return res, &Error{Op: op, HTTPStatus: status, Kind: KindBadRequest, Param: strings.Join(names, ","),
			Message: "planfix did not change " + strings.Join(fields, ", ") + ": check that the value exists in Planfix (a status must belong to the task's process) and that the token's employee may set it"}
	}
	return res, nil
}

func idPath(format string, id int64) string { return fmt.Sprintf(format, id) }

func fieldsQuery(fields, def string) url.Values {
	if fields == "" {
		fields = def
	}
	return url.Values{"fields": {fields}}
}

func pageSize(n int) int {
	if n <= 0 || n > MaxPageSize {
		return MaxPageSize
	}
	return n
}

// pages yields every item of a paginated list, fetching one page at a time from offset;
// it stops after a short page, on the first error (yielded once), or when the consumer
// stops.
func pages[T any](offset, size int, fetch func(offset, size int) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		if offset < 0 {
			offset = 0
		}
		size = pageSize(size)
		for {
			items, err := fetch(offset, size)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < size {
				return
			}
			offset += len(items)
		}
	}
}

// collect gathers a sequence into a slice, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for it, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// Ping checks the token and the account URL with GET /ping.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, call{op: "ping planfix", method: http.MethodGet, path: "/ping"}, nil)
	return err
}

// ---- Contacts ----

// ContactQuery selects contacts for POST /contact/list. Fields empty means
// DefaultContactFields; PageSize 0 means MaxPageSize.
type ContactQuery struct {
	Offset   int
	PageSize int
	Filters  []Filter
	Fields   string
}

type contactListRequest struct {
	Offset   int      `json:"offset"`
	PageSize int      `json:"pageSize"`
	Filters  []Filter `json:"filters,omitempty"`
	Fields   string   `json:"fields"`
}

// ListContacts returns one page of the contacts q selects.
func (c *Client) ListContacts(ctx context.Context, q ContactQuery) ([]Contact, error) {
	var out struct {
		Contacts []Contact `json:"contacts"`
	}
	body := contactListRequest{Offset: max(q.Offset, 0), PageSize: pageSize(q.PageSize), Filters: q.Filters, Fields: q.Fields}
	if body.Fields == "" {
		body.Fields = DefaultContactFields
	}
	_, err := c.do(ctx, call{op: "list contacts", method: http.MethodPost, path: "/contact/list", body: body}, &out)
	return out.Contacts, err
}

// Contacts yields every contact q selects, from q.Offset on, one page (one request) at a
// time.
func (c *Client) Contacts(ctx context.Context, q ContactQuery) iter.Seq2[Contact, error] {
	return pages(q.Offset, q.PageSize, func(offset, size int) ([]Contact, error) {
		q.Offset, q.PageSize = offset, size
		return c.ListContacts(ctx, q)
	})
}

// FindContactsByEmail returns the contacts whose email is email (filter 4026, equal),
// every page of them; none is not an error.
func (c *Client) FindContactsByEmail(ctx context.Context, email string) ([]Contact, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, &Error{Op: "find contacts by email", Kind: KindBadRequest, Param: "email", Message: "no email to look for"}
	}
	q := ContactQuery{Filters: []Filter{{Type: ContactFilterEmail, Operator: OpEqual, Value: email}}}
	return collect(c.Contacts(ctx, q))
}

// NewContact is a contact to create. SourceObjectID (a UUID, see SourceObjectID) is
// stored with the contact and returned by the list calls.
type NewContact struct {
	TemplateID     int64
	SourceObjectID string
	Name           string
	Lastname       string
	Email          string
	Phones         []Phone
	Description    string
}

type contactBody struct {
	Template       *Entity `json:"template,omitempty"`
	SourceObjectID string  `json:"sourceObjectId,omitempty"`
	Name           string  `json:"name,omitempty"`
	Lastname       string  `json:"lastname,omitempty"`
	Email          string  `json:"email,omitempty"`
	Phones         []Phone `json:"phones,omitempty"`
	Description    string  `json:"description,omitempty"`
}

// CreateContact creates a contact from a contact template with POST /contact/ and returns
// its number.
//
// It is not idempotent by itself: Planfix offers no lookup by sourceObjectId. A caller
// that may retry looks first for what an earlier attempt made, with FindContactsByEmail
// (or ListContacts with ContactFilterNamePart or ContactFilterPhone) and compares
// Contact.SourceObjectID with the id it sends.
func (c *Client) CreateContact(ctx context.Context, nc NewContact) (int64, error) {
	body := contactBody{SourceObjectID: nc.SourceObjectID, Name: nc.Name, Lastname: nc.Lastname,
		Email: nc.Email, Phones: nc.Phones, Description: nc.Description}
	if nc.TemplateID > 0 {
		body.Template = &Entity{ID: nc.TemplateID}
	}
	return c.create(ctx, "create contact", "/contact/", body)
}

// GetContact returns contact id with GET /contact/{id} and the given fields
// (comma-separated; empty means DefaultContactFields). A contact that does not exist (or
// that the token's employee cannot see) is a KindNotFound *Error (code 2000); one that
// was deleted may still be returned, with IsDeleted set.
func (c *Client) GetContact(ctx context.Context, id int64, fields string) (*Contact, error) {
	var out struct {
		Contact *Contact `json:"contact"`
	}
	op := idPath("get contact %d", id)
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: idPath("/contact/%d", id), query: fieldsQuery(fields, DefaultContactFields)}, &out); err != nil {
		return nil, err
	}
	if out.Contact == nil {
		return nil, c.fail(&Error{Op: op, HTTPStatus: http.StatusOK, Kind: KindUnavailable, Retryable: true, Message: "planfix answered without the contact; the call is retried"})
	}
	return out.Contact, nil
}

// ContactUpdate is a change to a contact; empty fields are left as they are.
type ContactUpdate struct {
	Name        string
	Lastname    string
	Email       string
	Phones      []Phone
	Description string
}

// UpdateContact changes contact id with POST /contact/{id}. When Planfix answers that it
// did not change some fields, it returns them in the result and a KindBadRequest *Error
// whose Param names them. It is idempotent.
func (c *Client) UpdateContact(ctx context.Context, id int64, u ContactUpdate) (UpdateResult, error) {
	body := contactBody{Name: u.Name, Lastname: u.Lastname, Email: u.Email, Phones: u.Phones, Description: u.Description}
	return c.update(ctx, idPath("update contact %d", id), idPath("/contact/%d", id), nil, body)
}

// NewComment is a comment to add. Description is HTML (see TextToHTML). Owner is who
// wrote it: a contact or an employee; empty means the employee the token acts as.
// SourceObjectID (a UUID) is stored with the comment and returned by ListTaskComments.
// Recipients, when set, are the people Planfix notifies of the comment.
type NewComment struct {
	Description    string
	Owner          PersonID
	SourceObjectID string
	IsHidden       bool
	Recipients     *Recipients
}

// Recipients address a comment (the spec's NotifiedRequest): the employees Users, and
// everyone who has one of Roles in the task (RoleAssignee and so on).
//
// Unverified: the spec's schema makes "roles" one string of an enum, while its example
// of the same request sends an array (["auditor","assigner"]); the array is sent, as the
// example does. A refusal comes back as a KindBadRequest *Error like any other.
type Recipients struct {
	Users []PersonID
	Roles []string
}

// Task roles a comment can be addressed to (Recipients.Roles).
const (
	RoleAssignee    = "assignee"
	RoleParticipant = "participant"
	RoleAuditor     = "auditor"
	RoleAssigner    = "assigner"
)

type personRef struct {
	ID PersonID `json:"id"`
}

type recipientsBody struct {
	Users []personRef `json:"users,omitempty"`
	Roles []string    `json:"roles,omitempty"`
}

type commentBody struct {
	SourceObjectID string          `json:"sourceObjectId,omitempty"`
	Description    string          `json:"description"`
	Owner          *personRef      `json:"owner,omitempty"`
	IsHidden       bool            `json:"isHidden,omitempty"`
	Recipients     *recipientsBody `json:"recipients,omitempty"`
}

func newCommentBody(nc NewComment) commentBody {
	b := commentBody{SourceObjectID: nc.SourceObjectID, Description: nc.Description, IsHidden: nc.IsHidden}
	if nc.Owner != "" {
		b.Owner = &personRef{ID: nc.Owner}
	}
	if r := nc.Recipients; r != nil && (len(r.Users) > 0 || len(r.Roles) > 0) {
		b.Recipients = &recipientsBody{Roles: r.Roles}
		for _, u := range r.Users {
			b.Recipients.Users = append(b.Recipients.Users, personRef{ID: u})
		}
	}
	return b
}

// AddContactComment adds a comment (an "action") to contact id's profile with
// POST /contact/{id}/comments/ and returns its number. It is not idempotent.
func (c *Client) AddContactComment(ctx context.Context, contactID int64, nc NewComment) (int64, error) {
	return c.create(ctx, idPath("comment on contact %d", contactID), idPath("/contact/%d/comments/", contactID), newCommentBody(nc))
}

// ---- Tasks ----

// NewTask is a task to create.
type NewTask struct {
	TemplateID     int64
	SourceObjectID string
	Name           string
	// Description is HTML (see TextToHTML).
	Description string
	// Assigner is who set the task, usually the customer's contact ("contact:12").
	// Unverified: whether Planfix accepts and keeps a contact as assigner on creation;
	// the caller finds out by reading the task back, and may use Counterparty instead.
	Assigner PersonID
	// Assignees are the employees who do the task.
	Assignees    []PersonID
	Counterparty PersonID
	// ProcessID and StatusID are optional; the template's are used otherwise.
	ProcessID int64
	StatusID  int64
}

type peopleRef struct {
	Users []personRef `json:"users"`
}

func newPeopleRef(ids []PersonID) *peopleRef {
	if len(ids) == 0 {
		return nil
	}
	p := &peopleRef{Users: make([]personRef, 0, len(ids))}
	for _, id := range ids {
		p.Users = append(p.Users, personRef{ID: id})
	}
	return p
}

type taskBody struct {
	SourceObjectID string     `json:"sourceObjectId,omitempty"`
	Template       *Entity    `json:"template,omitempty"`
	Name           string     `json:"name,omitempty"`
	Description    string     `json:"description,omitempty"`
	Assigner       *personRef `json:"assigner,omitempty"`
	Assignees      *peopleRef `json:"assignees,omitempty"`
	Counterparty   *personRef `json:"counterparty,omitempty"`
	ProcessID      int64      `json:"processId,omitempty"`
	Status         *Entity    `json:"status,omitempty"`
}

// CreateTask creates a task with POST /task/ and returns its number.
//
// It is not idempotent by itself. A caller that may retry sets SourceObjectID and looks
// first with FindTask (filtered by the assigner), since Planfix offers no lookup by
// sourceObjectId.
func (c *Client) CreateTask(ctx context.Context, nt NewTask) (int64, error) {
	body := taskBody{SourceObjectID: nt.SourceObjectID, Name: nt.Name, Description: nt.Description,
		Assignees: newPeopleRef(nt.Assignees), ProcessID: nt.ProcessID}
	if nt.TemplateID > 0 {
		body.Template = &Entity{ID: nt.TemplateID}
	}
	if nt.Assigner != "" {
		body.Assigner = &personRef{ID: nt.Assigner}
	}
	if nt.Counterparty != "" {
		body.Counterparty = &personRef{ID: nt.Counterparty}
	}
	if nt.StatusID > 0 {
		body.Status = &Entity{ID: nt.StatusID}
	}
	return c.create(ctx, "create task", "/task/", body)
}

// GetTask returns task id with the given fields (comma-separated; empty means
// DefaultTaskFields, which include status with its isActive).
func (c *Client) GetTask(ctx context.Context, id int64, fields string) (*Task, error) {
	var out struct {
		Task *Task `json:"task"`
	}
	op := idPath("get task %d", id)
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: idPath("/task/%d", id), query: fieldsQuery(fields, DefaultTaskFields)}, &out); err != nil {
		return nil, err
	}
	if out.Task == nil {
		return nil, c.fail(&Error{Op: op, HTTPStatus: http.StatusOK, Kind: KindUnavailable, Retryable: true, Message: "planfix answered without the task; the call is retried"})
	}
	return out.Task, nil
}

// TaskUpdate is a change to a task; zero fields are left as they are.
type TaskUpdate struct {
	Name        string
	Description string
	StatusID    int64
	// Assignees sets the assignees. Unverified: whether Planfix replaces or merges the
	// list; send the complete list.
	Assignees []PersonID
	// Counterparty sets the task's counterparty (a contact, "contact:12").
	Counterparty PersonID
	// Silent asks Planfix not to notify anyone (?silent=true).
	Silent bool
}

// UpdateTask changes task id with POST /task/{id}, typically its status. Planfix may
// queue the change (202: result.Accepted). When it answers that it did not change some
// fields, UpdateTask returns them in the result and a KindBadRequest *Error whose Param
// names them. It is idempotent.
func (c *Client) UpdateTask(ctx context.Context, id int64, u TaskUpdate) (UpdateResult, error) {
	body := taskBody{Name: u.Name, Description: u.Description, Assignees: newPeopleRef(u.Assignees)}
	if u.Counterparty != "" {
		body.Counterparty = &personRef{ID: u.Counterparty}
	}
	if u.StatusID > 0 {
		body.Status = &Entity{ID: u.StatusID}
	}
	var q url.Values
	if u.Silent {
		q = url.Values{"silent": {"true"}}
	}
	return c.update(ctx, idPath("update task %d", id), idPath("/task/%d", id), q, body)
}

// TaskQuery selects tasks for POST /task/list. FilterID names a saved filter (optional).
// Fields empty means DefaultTaskFields; PageSize 0 means MaxPageSize.
type TaskQuery struct {
	Offset   int
	PageSize int
	FilterID string
	Filters  []Filter
	Fields   string
}

type taskListRequest struct {
	Offset   int      `json:"offset"`
	PageSize int      `json:"pageSize"`
	FilterID string   `json:"filterId,omitempty"`
	Filters  []Filter `json:"filters,omitempty"`
	Fields   string   `json:"fields"`
}

// ListTasks returns one page of the tasks q selects.
func (c *Client) ListTasks(ctx context.Context, q TaskQuery) ([]Task, error) {
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	body := taskListRequest{Offset: max(q.Offset, 0), PageSize: pageSize(q.PageSize), FilterID: q.FilterID, Filters: q.Filters, Fields: q.Fields}
	if body.Fields == "" {
		body.Fields = DefaultTaskFields
	}
	_, err := c.do(ctx, call{op: "list tasks", method: http.MethodPost, path: "/task/list", body: body}, &out)
	return out.Tasks, err
}

// Tasks yields every task q selects, from q.Offset on, one page (one request) at a time.
func (c *Client) Tasks(ctx context.Context, q TaskQuery) iter.Seq2[Task, error] {
	return pages(q.Offset, q.PageSize, func(offset, size int) ([]Task, error) {
		q.Offset, q.PageSize = offset, size
		return c.ListTasks(ctx, q)
	})
}

// FindTask looks through the tasks q selects (for example TaskFilterAssigner with the
// customer's contact), with their sourceObjectId and description read, for the first
// one match accepts, and reports false when there is none. Planfix has no filter by
// sourceObjectId, so the match is made here, page by page; narrow q to keep it cheap.
func (c *Client) FindTask(ctx context.Context, q TaskQuery, match func(Task) bool) (Task, bool, error) {
	q.Fields = withField(withField(q.Fields, DefaultTaskFields, "sourceObjectId"), DefaultTaskFields, "description")
	for t, err := range c.Tasks(ctx, q) {
		if err != nil {
			return Task{}, false, err
		}
		if match(t) {
			return t, true, nil
		}
	}
	return Task{}, false, nil
}

// withField returns fields (or def when empty) with f added when missing.
func withField(fields, def, f string) string {
	if fields == "" {
		fields = def
	}
	for _, x := range strings.Split(fields, ",") {
		if strings.TrimSpace(x) == f {
			return fields
		}
	}
	return fields + "," + f
}

// AddTaskComment adds a comment to task id with POST /task/{id}/comments/ and returns its
// number. It is not idempotent; see FindTaskCommentBySourceObjectID.
func (c *Client) AddTaskComment(ctx context.Context, taskID int64, nc NewComment) (int64, error) {
	return c.create(ctx, idPath("comment on task %d", taskID), idPath("/task/%d/comments/", taskID), newCommentBody(nc))
}

// Comment list types, the values of CommentQuery.TypeList.
const (
	CommentsOnly    = "Comments"
	CommentsAll     = "All"
	CommentsNew     = "New"
	CommentsDeleted = "Deleted"
)

// CommentQuery selects the comments of a task. Fields empty means
// DefaultCommentListFields; PageSize 0 means MaxPageSize; TypeList empty means
// CommentsOnly. Comments come oldest first (by number).
type CommentQuery struct {
	Offset   int
	PageSize int
	Fields   string
	TypeList string
}

type commentOrder struct {
	// The spec's schema spells this key "filed" (a typo); its example, followed here,
	// says "field".
	Field     string `json:"field"`
	Direction string `json:"direction"`
}

type commentListRequest struct {
	Offset      int            `json:"offset"`
	PageSize    int            `json:"pageSize"`
	Fields      string         `json:"fields"`
	TypeList    string         `json:"typeList"`
	ResultOrder []commentOrder `json:"resultOrder"`
}

// ListTaskComments returns one page of task id's comments with
// POST /task/{id}/comments/list.
func (c *Client) ListTaskComments(ctx context.Context, taskID int64, q CommentQuery) ([]Comment, error) {
	var out struct {
		Comments []Comment `json:"comments"`
	}
	body := commentListRequest{Offset: max(q.Offset, 0), PageSize: pageSize(q.PageSize), Fields: q.Fields, TypeList: q.TypeList,
		ResultOrder: []commentOrder{{Field: "id", Direction: "Asc"}}}
	if body.Fields == "" {
		body.Fields = DefaultCommentListFields
	}
	if body.TypeList == "" {
		body.TypeList = CommentsOnly
	}
	_, err := c.do(ctx, call{op: idPath("list comments of task %d", taskID), method: http.MethodPost,
		path: idPath("/task/%d/comments/list", taskID), body: body}, &out)
	return out.Comments, err
}

// TaskComments yields every comment of task id, from q.Offset on, one page (one request)
// at a time.
func (c *Client) TaskComments(ctx context.Context, taskID int64, q CommentQuery) iter.Seq2[Comment, error] {
	return pages(q.Offset, q.PageSize, func(offset, size int) ([]Comment, error) {
		q.Offset, q.PageSize = offset, size
		return c.ListTaskComments(ctx, taskID, q)
	})
}

// GetComment returns comment id with GET /comment/{id} (DefaultCommentFields).
func (c *Client) GetComment(ctx context.Context, id int64) (*Comment, error) {
	var out struct {
		Comment *Comment `json:"comment"`
	}
	op := idPath("get comment %d", id)
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: idPath("/comment/%d", id), query: fieldsQuery("", DefaultCommentFields)}, &out); err != nil {
		return nil, err
	}
	if out.Comment == nil {
		return nil, c.fail(&Error{Op: op, HTTPStatus: http.StatusOK, Kind: KindUnavailable, Retryable: true, Message: "planfix answered without the comment; the call is retried"})
	}
	return out.Comment, nil
}

// ---- Employees ----

// GetUser returns employee id with GET /user/{id} (DefaultUserFields).
func (c *Client) GetUser(ctx context.Context, id int64) (*User, error) {
	var out struct {
		User *User `json:"user"`
	}
	op := idPath("get employee %d", id)
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: idPath("/user/%d", id), query: fieldsQuery("", DefaultUserFields)}, &out); err != nil {
		return nil, err
	}
	if out.User == nil {
		return nil, c.fail(&Error{Op: op, HTTPStatus: http.StatusOK, Kind: KindUnavailable, Retryable: true, Message: "planfix answered without the employee; the call is retried"})
	}
	return out.User, nil
}

// ---- Processes, statuses, templates ----

// ListTaskProcesses returns every task process with GET /process/task.
func (c *Client) ListTaskProcesses(ctx context.Context) ([]Process, error) {
	var out struct {
		Processes []Process `json:"processes"`
	}
	_, err := c.do(ctx, call{op: "list task processes", method: http.MethodGet, path: "/process/task", query: fieldsQuery("", "id,name")}, &out)
	return out.Processes, err
}

// ListProcessStatuses returns the statuses of task process id with
// GET /process/task/{id}/statuses, each with IsActive.
func (c *Client) ListProcessStatuses(ctx context.Context, processID int64) ([]Status, error) {
	var out struct {
		Statuses []Status `json:"statuses"`
	}
	_, err := c.do(ctx, call{op: idPath("list statuses of process %d", processID), method: http.MethodGet,
		path: idPath("/process/task/%d/statuses", processID), query: fieldsQuery("", DefaultStatusFields)}, &out)
	return out.Statuses, err
}

// ListTaskTemplates returns every task template with GET /task/templates, all pages.
func (c *Client) ListTaskTemplates(ctx context.Context) ([]Template, error) {
	return c.listTemplates(ctx, "list task templates", "/task/templates", "id,name,processId", nil)
}

// ListContactTemplates returns every contact template (not company templates) with
// GET /contact/templates, all pages.
func (c *Client) ListContactTemplates(ctx context.Context) ([]Template, error) {
	return c.listTemplates(ctx, "list contact templates", "/contact/templates", "id,name", url.Values{"isCompany": {"false"}})
}

func (c *Client) listTemplates(ctx context.Context, op, path, fields string, extra url.Values) ([]Template, error) {
	return collect(pages(0, MaxPageSize, func(offset, size int) ([]Template, error) {
		q := url.Values{"offset": {strconv.Itoa(offset)}, "pageSize": {strconv.Itoa(size)}, "fields": {fields}}
		for k, v := range extra {
			q[k] = v
		}
		var out struct {
			Templates []Template `json:"templates"`
		}
		_, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: q}, &out)
		return out.Templates, err
	}))
}
