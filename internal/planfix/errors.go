package planfix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/remote"
)

// Error kinds, the stable values of Error.Kind. Callers branch on them (and Temporal
// activities use them as the error type of non-retryable failures).
const (
	// KindUnauthorized: the token is unknown or inactive (codes 1, 2; HTTP 401).
	KindUnauthorized = "planfix.unauthorized"
	// KindForbidden: the token's scope or its employee's rights do not allow the call
	// (codes 5, 6; HTTP 403, 405).
	KindForbidden = "planfix.forbidden"
	// KindUnpaid: the account is unpaid or on the free plan (codes 20, 21).
	KindUnpaid = "planfix.unpaid"
	// KindDailyLimit: the account's daily request quota is used up (code 22). Retryable
	// after RetryAfter.
	KindDailyLimit = "planfix.daily_limit"
	// KindBadRequest: Planfix refused the request as malformed or its values as wrong
	// (codes 30, 40, 41, other 4xx), or did not change fields an update asked for.
	KindBadRequest = "planfix.bad_request"
	// KindNotFound: the task, contact, employee or comment does not exist or the token's
	// employee cannot see it (codes 1000, 2000, 4000, 5000; HTTP 404).
	KindNotFound = "planfix.not_found"
	// KindUnavailable: Planfix failed or is overloaded (HTTP 5xx, 429, an unreadable
	// answer), or the object is being modified (code 3). Retryable.
	KindUnavailable = "planfix.unavailable"
	// KindNetwork: no answer (connection refused, DNS, TLS, timeout). Retryable.
	KindNetwork = "planfix.network"
)

// Planfix's error codes (the "code" of an error body) that this package tells apart.
const (
	CodeUnknownToken    = 1
	CodeInactiveToken   = 2
	CodeBeingModified   = 3 // "object is being modified": another change holds it
	CodeScopeDenied     = 5
	CodeNoAccess        = 6
	CodeUnpaid          = 20
	CodeFreeAccount     = 21
	CodeDailyLimit      = 22
	CodeBadJSON         = 30
	CodeMissingParam    = 40
	CodeBadParamValue   = 41
	CodeTaskNotFound    = 1000
	CodeContactNotFound = 2000
	CodeUserNotFound    = 4000 // in the spec's examples for /user/{id}; not in PLANFIX.md
	CodeCommentNotFound = 5000
)

// Error is a failed Planfix call (remote.Error, one type for both remote APIs). Message
// says what happened and what to fix; it never contains the token. Retryable says
// whether the same call may succeed later, and RetryAfter, when not zero, how long to
// wait first. Param is the request parameter Planfix named as wrong (codes 40, 41) or the
// fields an update did not change, when known.
type Error = remote.Error

// AsError returns the Planfix error in err's chain (not another service's).
func AsError(err error) (*Error, bool) {
	e, ok := remote.As(err)
	return e, ok && e.Service() == "planfix"
}

// ErrorKind returns the Kind of the first *Error in err's chain, "" when there is none.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// IsRetryable reports whether err is a *Error that may succeed when retried. Errors that
// are not *Error (a limiter failure, a cancelled context) report false: the caller
// decides for those.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// IsNotFound reports whether err is a KindNotFound *Error.
func IsNotFound(err error) bool { return ErrorKind(err) == KindNotFound }

// failBody is the parsed {"result":"fail","code":N,"error":"text"} of an answer.
type failBody struct {
	result string
	code   int
	text   string
	json   bool // the body was a JSON object
}

// parseFailBody reads an error body with its keys matched case-insensitively and its code
// accepted as a number or a numeric string. It never fails: what cannot be read stays zero.
func parseFailBody(body []byte) failBody {
	var fb failBody
	var m map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(body), &m); err != nil {
		return fb
	}
	fb.json = true
	for k, v := range m {
		switch strings.ToLower(k) {
		case "result":
			_ = json.Unmarshal(v, &fb.result)
		case "code":
			var c flexInt
			if c.UnmarshalJSON(v) == nil {
				fb.code = int(c)
			}
		case "error", "message":
			if fb.text != "" && strings.ToLower(k) == "message" {
				continue // "error" wins over "message"
			}
			var s string
			if json.Unmarshal(v, &s) == nil {
				fb.text = s
			}
		}
	}
	return fb
}

// errorInfo is what newError needs to know about a failed answer.
type errorInfo struct {
	op     string
	status int
	body   []byte
	header http.Header
	now    time.Time
	scrub  func(string) string
}

// newError classifies a failed answer. Planfix's code decides first, because Planfix
// sends the same code under different statuses (code 1000 comes with 404 from
// POST /task/{id} and with 500 from POST /task/{id}/comments/list); the status decides
// when there is no known code.
func newError(in errorInfo) *Error {
	fb := parseFailBody(in.body)
	text := in.scrub(excerpt(fb.text))
	if text == "" && !fb.json {
		text = in.scrub(excerpt(string(in.body)))
	}
	says := ""
	if text != "" {
		says = fmt.Sprintf(" (planfix says %q)", text)
	}
	e := &Error{Op: in.op, HTTPStatus: in.status, Code: fb.code}
	switch fb.code {
	case CodeUnknownToken:
		e.Kind = KindUnauthorized
		e.Message = "planfix refused the token (code 1): create a new REST API token in Planfix, Account management, Integrations, REST API, and update the integration"
		return e
	case CodeInactiveToken:
		e.Kind = KindUnauthorized
		e.Message = "planfix says the token is inactive (code 2): activate it, or create a new REST API token in Planfix, Account management, Integrations, REST API, and update the integration"
		return e
	case CodeBeingModified:
		// Transient, whatever the HTTP status: the same call succeeds once the other
		// change is done.
		e.Kind, e.Retryable, e.RetryAfter = KindUnavailable, true, time.Second
		e.Message = "planfix says the object is being modified (code 3)" + says + ": the call is retried"
		return e
	case CodeScopeDenied:
		e.Kind = KindForbidden
		e.Message = "the token's scope does not allow this call (code 5): in Planfix, Account management, Integrations, REST API, allow the token to read and write tasks, contacts and comments and to read employees and processes, or create a token with full scope"
		return e
	case CodeNoAccess:
		e.Kind = KindForbidden
		e.Message = "the employee the token acts as has no access (code 6)" + says + ": give that employee access to the task template, its process, contacts and tasks, or use a token of an employee who has it"
		return e
	case CodeUnpaid:
		e.Kind = KindUnpaid
		e.Message = "the Planfix account is unpaid (code 20): pay for it in Planfix; every call fails until then"
		return e
	case CodeFreeAccount:
		e.Kind = KindUnpaid
		e.Message = "the Planfix account is on the free plan (code 21), which has no REST API: switch it to a paid plan"
		return e
	case CodeDailyLimit:
		until := retryAfterTime(in.header, in.now)
		if until.IsZero() {
			until = in.now.Truncate(time.Hour).Add(time.Hour)
		}
		e.Kind = KindDailyLimit
		e.Retryable = true
		e.RetryAfter = until.Sub(in.now)
		e.Message = fmt.Sprintf("the account's daily Planfix request limit is used up (code 22): calls wait until %s; a higher Planfix plan has a higher limit",
			until.UTC().Format(time.RFC3339))
		return e
	case CodeBadJSON:
		e.Kind = KindBadRequest
		e.Message = "planfix could not read the request (code 30)" + says + ": this is a bug in the bridge; report it with this message"
		return e
	case CodeMissingParam, CodeBadParamValue:
		e.Kind = KindBadRequest
		e.Param = paramName(text)
		what := "a required parameter is missing"
		if fb.code == CodeBadParamValue {
			what = "a parameter has a wrong value"
		}
		named := ""
		if e.Param != "" {
			named = fmt.Sprintf(", parameter %q", e.Param)
		}
		e.Message = fmt.Sprintf("planfix says %s (code %d%s)%s: check the ids in the integration's settings (task and contact templates, completed status, employees) and that they exist in Planfix",
			what, fb.code, named, says)
		return e
	case CodeTaskNotFound, CodeContactNotFound, CodeUserNotFound, CodeCommentNotFound:
		what := map[int]string{CodeTaskNotFound: "task", CodeContactNotFound: "contact",
			CodeUserNotFound: "employee", CodeCommentNotFound: "comment"}[fb.code]
		e.Kind = KindNotFound
		e.Message = fmt.Sprintf("planfix has no such %s (code %d)%s: it was deleted, or the employee the token acts as cannot see it", what, fb.code, says)
		return e
	}

	codeNote := ""
	if fb.code != 0 {
		codeNote = ", code " + strconv.Itoa(fb.code)
	}
	switch s := in.status; {
	case s == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
		e.Message = "planfix refused the token (HTTP 401" + codeNote + ")" + says + ": create a new REST API token in Planfix, Account management, Integrations, REST API, and update the integration"
	case s == http.StatusForbidden || s == http.StatusMethodNotAllowed:
		e.Kind = KindForbidden
		e.Message = fmt.Sprintf("planfix denied the call (HTTP %d%s)%s: check the token's scope (Account management, Integrations, REST API) and the rights of the employee it acts as", s, codeNote, says)
	case s == http.StatusNotFound:
		e.Kind = KindNotFound
		e.Message = "planfix answered 404" + codeNote + says + ": check that the account URL is right and ends in /rest, and that the object exists"
	case s == http.StatusTooManyRequests:
		e.Kind = KindUnavailable
		e.Retryable = true
		e.RetryAfter = time.Second // Planfix allows one request per second
		if until := retryAfterTime(in.header, in.now); !until.IsZero() {
			e.RetryAfter = until.Sub(in.now)
		}
		e.Message = "planfix is limiting the request rate (HTTP 429" + codeNote + ")" + says + ": the call is retried; if this repeats, check that every bridge process uses the shared PostgreSQL rate limiter"
	case s >= 500:
		e.Kind = KindUnavailable
		e.Retryable = true
		if until := retryAfterTime(in.header, in.now); !until.IsZero() {
			e.RetryAfter = until.Sub(in.now)
		}
		e.Message = fmt.Sprintf("planfix is unavailable (HTTP %d%s)%s: the call is retried later", s, codeNote, says)
	case s >= 400:
		e.Kind = KindBadRequest
		e.Message = fmt.Sprintf("planfix refused the request (HTTP %d%s)%s: check the integration's settings", s, codeNote, says)
	case s >= 300 && s < 400:
		where := ""
		if u, err := url.Parse(in.header.Get("Location")); err == nil && u.Host != "" {
			where = " to " + in.scrub(excerpt(u.Scheme+"://"+u.Host+u.Path))
		}
		e.Kind = KindBadRequest
		e.Message = fmt.Sprintf("planfix redirects (HTTP %d)%s: set the account URL to where it points, ending in /rest (for example https://example.planfix.com/rest)", s, where)
	default:
		e.Kind = KindBadRequest
		e.Message = fmt.Sprintf("planfix gave an unexpected answer (HTTP %d%s)%s: check that the account URL is right and ends in /rest", s, codeNote, says)
	}
	return e
}

// retryAfterTime is when a Retry-After header (remote.RetryAfter) lets the call be
// retried; zero when it says nothing usable.
func retryAfterTime(h http.Header, now time.Time) time.Time {
	if d := remote.RetryAfter(h.Get("Retry-After"), now); d > 0 {
		return now.Add(d)
	}
	return time.Time{}
}

var (
	paramWordRE   = regexp.MustCompile(`(?i)\b(?:parameter|param|field)\s*[:=]?\s*['"«]?([A-Za-z_][A-Za-z0-9_.]*)`)
	paramQuotedRE = regexp.MustCompile(`['"«]([A-Za-z_][A-Za-z0-9_.]*)['"»]`)
	paramWordsRE  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// knownParams are the request parameters the bridge sends, in the order they are looked
// for in an error text that names no parameter explicitly ("Status not find by id 2").
var knownParams = []string{"template", "status", "assigner", "assignees", "counterparty",
	"owner", "process", "processId", "sourceObjectId", "email", "phones", "name", "lastname",
	"description", "filters", "fields", "pageSize", "offset"}

// paramName finds the parameter an error text names, or "".
func paramName(text string) string {
	if m := paramWordRE.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	if m := paramQuotedRE.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	words := paramWordsRE.FindAllString(text, -1)
	for _, p := range knownParams {
		for _, w := range words {
			if strings.EqualFold(w, p) {
				return p
			}
		}
	}
	return ""
}

// excerpt shortens an error text from the remote side to one printable line.
func excerpt(s string) string { return remote.Excerpt(s, 300) }
