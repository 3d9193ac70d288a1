package chatra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge/internal/remote"
)

// Defaults of Config.
const (
	// DefaultAPIURL is the origin of Chatra's REST API; the calls live under /api/ there.
	DefaultAPIURL = "https://app.chatra.io"
	// DefaultTimeout bounds one call (or the caller's deadline, if sooner).
	DefaultTimeout = 15 * time.Second
)

// Error kinds, the values of Error.Kind. They are stable: activities use them as Temporal
// error types, and alerts may match on them.
const (
	KindUnauthorized    = "chatra.unauthorized"     // 401: wrong API keys
	KindPaymentRequired = "chatra.payment_required" // 402: the account has no paid plan
	KindForbidden       = "chatra.forbidden"        // 403: refused; usually the plan, sometimes the keys
	KindNotFound        = "chatra.not_found"        // 404: no such visitor or message
	KindBadRequest      = "chatra.bad_request"      // other 4xx: Chatra refused the request itself
	KindRateLimited     = "chatra.rate_limited"     // 429: retry, after RetryAfter when set
	KindUnavailable     = "chatra.unavailable"      // 5xx and 408: retry later
	KindNetwork         = "chatra.network"          // no answer: connection failed or timed out
	KindCanceled        = "chatra.canceled"         // the caller's context was canceled
	KindBadResponse     = "chatra.bad_response"     // an answer that is not Chatra's (redirect, unreadable body)
)

// maxResponseBytes bounds how much of an answer the client reads.
const maxResponseBytes = 1 << 20

// maxBodyExcerpt bounds, in runes, the excerpt of an error answer kept in Error.Body.
const maxBodyExcerpt = 200

// redacted replaces secrets wherever this package writes something a person may read.
const redacted = remote.Redacted

// Config is what the client needs to reach one Chatra account. It is safe to log: its
// LogValue, String, GoString and MarshalJSON never contain SecretKey.
type Config struct {
	// APIURL is the origin of the API, such as https://app.chatra.io (the default when
	// empty) or a sandbox's address; a path is kept as a prefix. The calls go to /api/...
	// under it.
	APIURL string
	// PublicKey and SecretKey are the account's API keys (Chatra dashboard, Settings, API
	// keys). The public key is not secret; the secret key is.
	PublicKey string
	SecretKey string
	// Timeout bounds each call (the caller's deadline still applies if sooner);
	// DefaultTimeout when zero.
	Timeout time.Duration
}

// Validate reports, as an *InputError naming the field ("apiUrl", "publicKey",
// "secretKey"), a configuration no call could succeed with.
func (c Config) Validate() error {
	_, err := c.baseURL()
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.PublicKey) == "" {
		return &InputError{Field: "publicKey", Message: "publicKey is empty: copy it from the Chatra dashboard, Settings, API keys"}
	}
	if strings.TrimSpace(c.SecretKey) == "" {
		return &InputError{Field: "secretKey", Message: "secretKey is empty: copy it from the Chatra dashboard, Settings, API keys"}
	}
	if strings.ContainsAny(c.PublicKey+c.SecretKey, "\r\n") {
		return &InputError{Field: "secretKey", Message: "the API keys contain a line break; paste them again"}
	}
	return nil
}

// baseURL returns APIURL (or the default) without its trailing slash, after checking it.
func (c Config) baseURL() (string, error) {
	raw := strings.TrimSpace(c.APIURL)
	if raw == "" {
		raw = DefaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &InputError{Field: "apiUrl", Message: fmt.Sprintf("apiUrl %s is not an http(s) URL such as %s", excerpt(raw), DefaultAPIURL)}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", &InputError{Field: "apiUrl", Message: "apiUrl must be a plain origin such as " + DefaultAPIURL + ", without credentials, query or fragment"}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// LogValue implements slog.LogValuer; the secret key is redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("apiUrl", c.APIURL),
		slog.String("publicKey", c.PublicKey),
		slog.String("secretKey", redactedOrUnset(c.SecretKey)),
		slog.Duration("timeout", c.Timeout),
	)
}

// String implements fmt.Stringer; the secret key is redacted.
func (c Config) String() string {
	return fmt.Sprintf("chatra.Config{APIURL:%q PublicKey:%q SecretKey:%s Timeout:%s}",
		c.APIURL, c.PublicKey, redactedOrUnset(c.SecretKey), c.Timeout)
}

// GoString implements fmt.GoStringer, for %#v; the secret key is redacted.
func (c Config) GoString() string { return c.String() }

// MarshalJSON writes the configuration with the secret key redacted, so that it cannot
// reach a workflow history or a log by way of JSON. Decoding is not affected.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		APIURL    string        `json:"apiUrl"`
		PublicKey string        `json:"publicKey"`
		SecretKey string        `json:"secretKey"`
		Timeout   time.Duration `json:"timeout,omitempty"`
	}{c.APIURL, c.PublicKey, redactedOrUnset(c.SecretKey), c.Timeout})
}

func redactedOrUnset(secret string) string {
	if secret == "" {
		return "(unset)"
	}
	return redacted
}

// Client calls Chatra's REST API for one account. It is safe for concurrent use. Every
// call's error is an *InputError (arguments Chatra would refuse, or a Config that fails
// Validate; never sent) or an *Error (everything else).
type Client struct {
	base    string
	baseErr error
	auth    string // the Authorization header value; holds the secret
	secret  string // for scrubbing; never printed
	timeout time.Duration
	remote  *remote.Caller
	cfg     Config
}

// NewClient returns a client for cfg, sending requests through httpClient's transport
// (http.DefaultClient's when nil). The client does not follow redirects, whatever
// httpClient's policy: Chatra's API does not redirect, and following one would forward the
// keys and turn a POST into a GET; a redirect is reported as KindBadResponse instead.
// A cfg that fails Validate does not stop NewClient: every call then fails with that
// *InputError.
func NewClient(cfg Config, httpClient *http.Client) *Client {
	c := &Client{
		auth:    "Chatra.Simple " + cfg.PublicKey + ":" + cfg.SecretKey,
		secret:  cfg.SecretKey,
		timeout: cfg.Timeout,
		cfg:     cfg,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	c.remote = remote.NewCaller(httpClient, c.timeout, maxResponseBytes)
	c.base, c.baseErr = cfg.baseURL()
	if c.baseErr == nil {
		c.baseErr = cfg.Validate()
	}
	return c
}

// String implements fmt.Stringer without the secret.
func (c *Client) String() string {
	if c == nil {
		return "chatra.Client(nil)"
	}
	return "chatra.Client{" + c.cfg.String() + "}"
}

// GoString implements fmt.GoStringer, for %#v, without the secret.
func (c *Client) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secret.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("chatra.Client(nil)")
	}
	return c.cfg.LogValue()
}

// Error is a failed call to Chatra (remote.Error, one type for both remote APIs): a
// refusal, an error status or no answer at all. Its text names the cause and, where there
// is one, the fix. It never contains the secret key: Body is an excerpt of the answer
// scrubbed of it. Op is "chatra " and the call ("chatra send message", ...); Retryable is
// true for KindRateLimited, KindUnavailable, KindNetwork and a retryable KindBadResponse;
// Err is context.DeadlineExceeded, context.Canceled or the scrubbed transport error
// behind KindNetwork and KindCanceled, else nil.
type Error = remote.Error

// SendMessageInput is a message to send into a visitor's chat. The sender is either
// AgentID, or all of AgentEmail, AgentName and ReceivedFrom; ReceivedFrom may accompany
// AgentID too, and is the tag by which the bridge recognises its own messages when they
// come back in webhooks.
type SendMessageInput struct {
	ClientID     string `json:"clientId"`
	Text         string `json:"text"`
	AgentID      string `json:"agentId,omitempty"`
	AgentEmail   string `json:"agentEmail,omitempty"`
	AgentName    string `json:"agentName,omitempty"`
	ReceivedFrom string `json:"receivedFrom,omitempty"`
}

// Validate reports, as an *InputError naming the field, an input Chatra would refuse:
// a missing clientId; a text that is empty, only white space, or longer than
// MaxMessageLength (split it with SplitText); or a sender that is neither AgentID nor all
// of AgentEmail, AgentName and ReceivedFrom.
func (in SendMessageInput) Validate() error {
	if strings.TrimSpace(in.ClientID) == "" {
		return &InputError{Field: "clientId", Message: "clientId is empty: a message goes to a visitor's chat"}
	}
	if strings.TrimSpace(in.Text) == "" {
		return &InputError{Field: "text", Message: "text is empty: Chatra takes 1 to 5000 characters"}
	}
	if n := textLength(in.Text); n > MaxMessageLength {
		return &InputError{Field: "text", Message: fmt.Sprintf("text is %d characters long, over Chatra's limit of %d per message: split it (chatra.SplitText)", n, MaxMessageLength)}
	}
	agentID := strings.TrimSpace(in.AgentID) != ""
	emailSender := strings.TrimSpace(in.AgentEmail) != "" || strings.TrimSpace(in.AgentName) != ""
	switch {
	case agentID && emailSender:
		return &InputError{Field: "agentId", Message: "set either agentId or agentEmail with agentName and receivedFrom, not both"}
	case agentID:
		return nil
	case strings.TrimSpace(in.AgentEmail) == "":
		return &InputError{Field: "agentEmail", Message: "the sender is missing: set agentId, or agentEmail, agentName and receivedFrom"}
	case strings.TrimSpace(in.AgentName) == "":
		return &InputError{Field: "agentName", Message: "agentName is empty: Chatra needs it with agentEmail"}
	case strings.TrimSpace(in.ReceivedFrom) == "":
		return &InputError{Field: "receivedFrom", Message: "receivedFrom is empty: Chatra needs it with agentEmail"}
	}
	return nil
}

// SendMessage posts a message into the visitor's chat (POST /api/messages/) and returns
// the message Chatra created.
//
// The input is validated first (see SendMessageInput.Validate) and nothing is sent when it
// fails. The call is not idempotent: when it fails without an answer (KindNetwork), the
// message may or may not have been created, and a retry may show it twice. A success
// answer whose body cannot be read still counts as sent: the returned message then has
// the input's values and an empty ID.
func (c *Client) SendMessage(ctx context.Context, in SendMessageInput) (*Message, error) {
	const op = "send message"
	if err := in.Validate(); err != nil {
		return nil, err
	}
	body, err := c.do(ctx, op, http.MethodPost, "/api/messages/", in, "the visitor "+strconv.Quote(in.ClientID))
	if err != nil {
		return nil, err
	}
	var m Message
	if json.Unmarshal(body, &m) != nil {
		m = Message{}
	}
	if m.ID == "" {
		m = Message{Type: MessageTypeAgent, Text: in.Text, ClientID: in.ClientID, AgentID: in.AgentID, AgentName: in.AgentName, ReceivedFrom: in.ReceivedFrom}
	}
	return &m, nil
}

// GetMessage reads one message (GET /api/messages/{id}). An unknown id gives an *Error of
// KindNotFound.
func (c *Client) GetMessage(ctx context.Context, id string) (*Message, error) {
	const op = "get message"
	if strings.TrimSpace(id) == "" {
		return nil, &InputError{Field: "id", Message: "the message id is empty"}
	}
	body, err := c.do(ctx, op, http.MethodGet, "/api/messages/"+url.PathEscape(id), nil, "the message "+strconv.Quote(id))
	if err != nil {
		return nil, err
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, c.badResponse(op, body)
	}
	if m.ID == "" {
		m.ID = id
	}
	return &m, nil
}

// GetClient reads a visitor's card (GET /api/clients/{id}). An unknown id gives an *Error
// of KindNotFound. The card's ID is id when the answer leaves it out.
func (c *Client) GetClient(ctx context.Context, id string) (*ClientCard, error) {
	const op = "get client"
	if strings.TrimSpace(id) == "" {
		return nil, &InputError{Field: "id", Message: "the client id is empty"}
	}
	body, err := c.do(ctx, op, http.MethodGet, "/api/clients/"+url.PathEscape(id), nil, "the visitor "+strconv.Quote(id))
	if err != nil {
		return nil, err
	}
	var card ClientCard
	if err := json.Unmarshal(body, &card); err != nil {
		return nil, c.badResponse(op, body)
	}
	if card.ID == "" {
		card.ID = id
	}
	return &card, nil
}

// ClientUpdate is what UpdateClient may write on a visitor's card. Empty fields are left
// as they are on the card; there is no way to clear a field.
type ClientUpdate struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	Notes string `json:"notes,omitempty"`
}

// UpdateClient writes the non-empty fields of u on the visitor's card
// (PUT /api/clients/{id}). An update with no field set returns nil without calling
// Chatra. It is idempotent. An unknown id gives an *Error of KindNotFound.
func (c *Client) UpdateClient(ctx context.Context, id string, u ClientUpdate) error {
	const op = "update client"
	if strings.TrimSpace(id) == "" {
		return &InputError{Field: "id", Message: "the client id is empty"}
	}
	if u == (ClientUpdate{}) {
		return nil
	}
	_, err := c.do(ctx, op, http.MethodPut, "/api/clients/"+url.PathEscape(id), u, "the visitor "+strconv.Quote(id))
	return err
}

// do sends one request and returns the body of a 2xx answer. path is already escaped;
// what names the resource for a 404.
func (c *Client) do(ctx context.Context, op, method, path string, in any, what string) ([]byte, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	var reqBody []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, &InputError{Message: "the request cannot be encoded as JSON: " + err.Error()}
		}
		reqBody = b
	}
	header := http.Header{
		"Authorization": {c.auth},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
		"User-Agent":    {"chatrabridge"},
	}
	// Every call is bounded, even inside a long activity deadline, so a hung Chatra
	// fails the call and lets the activity retry.
	resp, failure := c.remote.Do(ctx, method, c.base+path, header, reqBody)
	if failure != nil {
		if failure.Unbuildable {
			return nil, &InputError{Field: "apiUrl", Message: "cannot build a request to " + c.base + ": " + c.scrub(failure.Cause.Error())}
		}
		return nil, c.transportError(op, failure)
	}
	if resp.Status >= 200 && resp.Status < 300 {
		// A success whose body broke off still succeeded; callers decide what a partial
		// body means.
		return resp.Body, nil
	}
	// An error answer is described by its status; a partial body is fine.
	return nil, c.statusError(op, resp, what)
}

// transportError describes a request that got no answer.
func (c *Client) transportError(op string, f *remote.Failure) *Error {
	// The cause itself is not kept: its text may hold URLs, and only a scrubbed copy may leave.
	e := &Error{Op: "chatra " + op, Kind: KindNetwork, Retryable: true, Err: errors.New(c.scrub(f.Cause.Error()))}
	switch {
	case f.Canceled:
		e.Kind, e.Retryable, e.Err = KindCanceled, false, context.Canceled
		e.Message = "the call was canceled before chatra answered"
	case f.TimedOut:
		e.Err = context.DeadlineExceeded
		if f.CallerDeadline {
			e.Message = "chatra did not answer before the caller's deadline; retry later"
		} else {
			e.Message = fmt.Sprintf("chatra did not answer within %s; retry later", c.timeout)
		}
	default:
		e.Message = fmt.Sprintf("cannot reach chatra at %s: %s; check chatra.apiUrl and the network, then retry", c.base, c.scrub(f.Cause.Error()))
	}
	return e
}

// statusError describes an error answer.
func (c *Client) statusError(op string, resp remote.Answer, what string) *Error {
	code := resp.Status
	e := &Error{
		Op:         "chatra " + op,
		HTTPStatus: code,
		RetryAfter: remote.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body:       c.excerptBody(resp.Body),
	}
	switch {
	case code == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
		e.Message = "chatra refused the API keys (401): check the integration's publicKey/secretKey in the Chatra dashboard, Settings, API keys"
	case code == http.StatusPaymentRequired:
		e.Kind = KindPaymentRequired
		e.Message = "chatra refused the call (402): its REST API needs a paid Chatra plan; upgrade the account's plan in the Chatra dashboard (retrying does not help)"
	case code == http.StatusForbidden:
		e.Kind = KindForbidden
		e.Message = "chatra refused the call (403): its REST API needs a paid Chatra plan and keys of this account; check the plan and the keys in the Chatra dashboard, Settings, API keys"
	case code == http.StatusNotFound:
		e.Kind = KindNotFound
		e.Message = fmt.Sprintf("chatra does not know %s (404); if it should exist, check that chatra.apiUrl points at Chatra", what)
	case code == http.StatusTooManyRequests:
		e.Kind, e.Retryable = KindRateLimited, true
		e.Message = "chatra's rate limit was reached (429); retry later"
		if e.RetryAfter > 0 {
			e.Message = fmt.Sprintf("chatra's rate limit was reached (429); retry after %s", e.RetryAfter)
		}
	case code == http.StatusRequestTimeout || code >= 500:
		e.Kind, e.Retryable = KindUnavailable, true
		e.Message = fmt.Sprintf("chatra is unavailable (%d); retry later", code)
	case code >= 400:
		e.Kind = KindBadRequest
		e.Message = fmt.Sprintf("chatra rejected the request (%d); it will not succeed as it is", code)
	default:
		e.Kind = KindBadResponse
		e.Message = fmt.Sprintf("unexpected answer from chatra (%d); check that chatra.apiUrl is the API's origin (%s)", code, DefaultAPIURL)
	}
	return e
}

// badResponse describes a success answer whose body is not what Chatra sends. It is
// retryable: such answers come from proxies and outages more often than from Chatra.
func (c *Client) badResponse(op string, body []byte) *Error {
	return &Error{
		Op: "chatra " + op, HTTPStatus: http.StatusOK, Kind: KindBadResponse, Retryable: true,
		Message: "chatra's answer is not the JSON object expected; check that chatra.apiUrl is the API's origin, or retry",
		Body:    c.excerptBody(body),
	}
}

// authHeaderRE finds Authorization header values an answer might echo.
var authHeaderRE = regexp.MustCompile(`(?i)(chatra\.simple)\s+[^\s"',;}]+`)

// scrub removes the secret key and anything that looks like a credential from s.
func (c *Client) scrub(s string) string {
	return authHeaderRE.ReplaceAllString(remote.Scrub(s, c.secret), "$1 "+remote.Redacted)
}

// excerptBody turns an error answer into a short, single-line, scrubbed excerpt.
func (c *Client) excerptBody(body []byte) string {
	s := c.scrub(strings.ToValidUTF8(string(body), "\uFFFD"))
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f
	}), " ")
	return truncate(s, maxBodyExcerpt)
}
