// Package remote is what the Chatra and Planfix clients share about calling a remote
// API: one bounded exchange (a deadline per request however long the caller's, a bounded
// read of the answer, no redirects followed), what a refusal's Retry-After says, secrets
// scrubbed from what leaves, and one error type. Each client keeps its endpoints and its
// own classification of answers (the Kind constants, prefixed by its service).
package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error is a failed call to a remote API: a refusal, an error status or no answer at all.
// Message says what happened and what to fix; nothing in it, Body or Err carries a
// secret. Retryable says whether the same call may succeed later, RetryAfter, when not
// zero, how long to wait first.
type Error struct {
	// Op names the call, such as "create task" or "chatra send message".
	Op string
	// HTTPStatus is the answer's status, 0 when there was no answer.
	HTTPStatus int
	// Code is the service's own error code, 0 when the answer had none.
	Code int
	// Kind is the client's classification: "<service>.<kind>", e.g. "planfix.not_found".
	Kind string
	// Message is the explanation, with the fix.
	Message string
	// Param is the request parameter the service named as wrong, when known.
	Param string
	// Body is a short, single-line, scrubbed excerpt of the answer; may be empty.
	Body string
	// Retryable reports whether retrying the same call may succeed.
	Retryable bool
	// RetryAfter is how long to wait before retrying, when known.
	RetryAfter time.Duration
	// Err is the underlying cause (context.DeadlineExceeded, a scrubbed transport or
	// decoding error), if any.
	Err error
}

// Error implements error: "<op>: <message> (answer: "<body>")".
func (e *Error) Error() string {
	s := e.Message
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Body != "" {
		s += " (answer: " + strconv.Quote(e.Body) + ")"
	}
	return s
}

// Unwrap returns the underlying cause, so errors.Is(err, context.DeadlineExceeded) works.
func (e *Error) Unwrap() error { return e.Err }

// Service is the service whose call failed: the Kind's prefix.
func (e *Error) Service() string {
	s, _, _ := strings.Cut(e.Kind, ".")
	return s
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// MaxRetryAfter is the longest Retry-After taken: a longer one is not believed (the
// caller retries on its own schedule).
const MaxRetryAfter = 7 * 24 * time.Hour

// RetryAfter reads a Retry-After value: seconds, or an HTTP date, relative to now. A value
// that is absent, unreadable, not in the future or beyond MaxRetryAfter gives 0.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(MaxRetryAfter/time.Second) {
			return 0
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now).Round(time.Second)
	}
	if d <= 0 || d > MaxRetryAfter {
		return 0
	}
	return d
}

// Redacted stands where a secret was.
const Redacted = "[REDACTED]"

// Scrub replaces every secret (of at least 4 bytes) in s with Redacted.
func Scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// Excerpt is s on one line (control characters and runs of space made one space), valid
// UTF-8, cut to at most max bytes with "…".
func Excerpt(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Caller makes bounded exchanges with one remote API.
type Caller struct {
	http    *http.Client
	timeout time.Duration
	maxBody int64
}

// NewCaller returns a caller on a copy of hc (nil: http.DefaultClient) that follows no
// redirect (a redirected POST would turn into a GET, and credentials go only to the
// configured URL: a 3xx is answered as it is), bounds every exchange by timeout and reads
// at most maxBody bytes of an answer.
func NewCaller(hc *http.Client, timeout time.Duration, maxBody int64) *Caller {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Caller{http: &c, timeout: timeout, maxBody: maxBody}
}

// Timeout is the bound of one exchange.
func (c *Caller) Timeout() time.Duration { return c.timeout }

// Answer is a remote API's answer, read.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte // at most the caller's maxBody bytes
	// ReadErr is what broke off reading the body, if anything: Body holds what came.
	ReadErr error
}

// Failure is an exchange that got no answer, classified for the client's message.
type Failure struct {
	// Canceled: the caller's own context was canceled.
	Canceled bool
	// TimedOut: the exchange's deadline (or the caller's) passed, or the network timed out.
	TimedOut bool
	// CallerDeadline: the caller's context had a deadline of its own.
	CallerDeadline bool
	// Unbuildable: no request could be made of the method and URL.
	Unbuildable bool
	// Cause is the transport error's cause, without the method and URL that url.Error
	// repeats; the client scrubs its text.
	Cause error
}

// Do sends method url with the header and body (none when nil) under a context bounded
// by the caller's timeout, and reads the answer; a *Failure when no answer came.
func (c *Caller) Do(ctx context.Context, method, rawURL string, header http.Header, body []byte) (Answer, *Failure) {
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var payload io.Reader
	if body != nil {
		payload = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(hctx, method, rawURL, payload)
	if err != nil {
		return Answer{}, &Failure{Unbuildable: true, Cause: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		f := &Failure{Cause: err}
		var ue *url.Error
		if errors.As(err, &ue) {
			f.Cause = ue.Err
		}
		var ne net.Error
		_, f.CallerDeadline = ctx.Deadline()
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			f.Canceled = true
		case errors.Is(err, context.DeadlineExceeded) || hctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
			f.TimedOut = true
		}
		return Answer{}, f
	}
	defer resp.Body.Close()
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b, ReadErr: readErr}, nil
}
