package sandbox

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/chatrabridge/chatrabridge/internal/chatra"
)

// Chatra is an in-memory stand-in for Chatra's REST API (docs/CHATRA.md): the same paths
// under /api/, the same Chatra.Simple authorization, the documented validation of bodies,
// and error statuses where the real API has them. It is an http.Handler that routes only
// on the request path relative to where it is mounted, so it works under
// http.StripPrefix. It is safe for concurrent use.
//
// It serves:
//
//	POST /api/messages/        send a message: clientId, text (1..5000 UTF-16 code units),
//	                           and agentId, or agentEmail + agentName + receivedFrom;
//	                           404 when the client is unknown
//	GET  /api/messages/{id}    one message sent through it
//	GET  /api/clients/{id}     a client card seeded with PutClient; 404 otherwise
//	PUT  /api/clients/{id}     update name, email, phone, notes of a card
//
// Every /api/ call needs "Authorization: Chatra.Simple <public>:<secret>" (401 otherwise)
// and answers 402 while the paid plan is off (SetPaidPlan). Faults injected with
// InjectFault take precedence over both.
//
// For the dev stack and the demo, which run it in another process, it also serves an
// unauthenticated inspection API under /_sandbox/ (Server mounts it at /_sandbox/chatra/)
// that no fault or switch affects:
//
//	GET    /_sandbox/messages[?clientId=]  the messages sent, oldest first
//	GET    /_sandbox/clients/{id}          a client card
//	PUT    /_sandbox/clients/{id}          seed or replace a client card (body: the card)
//	POST   /_sandbox/faults                inject a fault (body: ChatraFault; delay as "2s")
//	DELETE /_sandbox/faults                clear the faults
//	PUT    /_sandbox/paid-plan             {"active": false} to answer 402 to every call
//
// Where Chatra's behaviour is unknown (its error body, unknown fields) it chooses
// plausibly: errors are {"status":N,"error":"<kind>","message":"..."}, unknown body fields
// are ignored.
type Chatra struct {
	auth string // the expected Authorization header

	mu            sync.Mutex
	messages      []chatra.Message
	clients       map[string]chatra.ClientCard
	agentsByEmail map[string]chatraAgent
	agentsByID    map[string]chatraAgent
	faults        []ChatraFault
	unpaid        bool
	requests      int
	now           func() time.Time
}

// chatraAgent is a placeholder agent Chatra creates for an unknown agentEmail.
type chatraAgent struct {
	id, name, email string
}

// ChatraFault makes requests fail or stall, for reliability tests.
type ChatraFault struct {
	// PathPrefix limits the fault to requests whose path, relative to the handler, starts
	// with it, such as "/api/messages/"; empty matches every /api/ request.
	PathPrefix string
	// Status is the HTTP status to answer with; 0 serves the request normally after Delay.
	Status int
	// RetryAfter is sent as the Retry-After header when not empty: seconds ("30") or an
	// HTTP date.
	RetryAfter string
	// Delay holds the answer back this long (or until the caller gives up), to simulate
	// latency and timeouts.
	Delay time.Duration
	// Count is how many matching requests the fault applies to; at least 1.
	Count int
}

// NewChatra returns a stand-in that accepts the given API keys, with no clients, no
// messages, no faults and the paid plan on.
func NewChatra(publicKey, secretKey string) *Chatra {
	return &Chatra{
		auth:          "Chatra.Simple " + publicKey + ":" + secretKey,
		clients:       make(map[string]chatra.ClientCard),
		agentsByEmail: make(map[string]chatraAgent),
		agentsByID:    make(map[string]chatraAgent),
		now:           time.Now,
	}
}

// PutClient seeds or replaces a client card, as a visitor of the site would create it.
// It fails when card.ID is empty.
func (s *Chatra) PutClient(card chatra.ClientCard) error {
	if strings.TrimSpace(card.ID) == "" {
		return errors.New("sandbox chatra: put client: the card has no ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[card.ID] = chatraCloneCard(card)
	return nil
}

// Client returns a copy of the client card with the given id, and whether it exists.
func (s *Chatra) Client(id string) (chatra.ClientCard, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	card, ok := s.clients[id]
	if !ok {
		return chatra.ClientCard{}, false
	}
	return chatraCloneCard(card), true
}

// Messages returns a copy of the messages sent through the API, oldest first.
func (s *Chatra) Messages() []chatra.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chatra.Message(nil), s.messages...)
}

// InjectFault queues a fault. Each /api/ request takes the first queued fault that
// matches its path, and uses up one of its Count.
func (s *Chatra) InjectFault(f ChatraFault) {
	if f.Count < 1 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ClearFaults drops every queued fault.
func (s *Chatra) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetPaidPlan switches the account's paid plan; while it is off, every authorized /api/
// request is answered 402, as Chatra does for accounts without API access.
func (s *Chatra) SetPaidPlan(active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpaid = !active
}

// RequestCount returns how many /api/ requests have arrived, whatever their answer.
func (s *Chatra) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ServeHTTP implements http.Handler.
func (s *Chatra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(path, "/_sandbox/") {
		s.serveInspect(w, r, strings.TrimPrefix(path, "/_sandbox"))
		return
	}

	s.mu.Lock()
	s.requests++
	fault, faulty := s.takeFault(path)
	unpaid := s.unpaid
	s.mu.Unlock()

	if faulty {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Status != 0 {
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			chatraWriteError(w, fault.Status, "injected fault")
			return
		}
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(s.auth)) != 1 {
		chatraWriteError(w, http.StatusUnauthorized, "invalid or missing Authorization header: expected Chatra.Simple <public key>:<secret key>")
		return
	}
	if unpaid {
		chatraWriteError(w, http.StatusPaymentRequired, "the REST API is available on paid plans only")
		return
	}

	switch {
	case path == "/api/messages/":
		if !chatraAllow(w, r, http.MethodPost) {
			return
		}
		s.sendMessage(w, r)
	case strings.HasPrefix(path, "/api/messages/"):
		id, ok := chatraPathID(path, "/api/messages/")
		if !ok {
			chatraWriteError(w, http.StatusNotFound, "no such API path")
			return
		}
		if !chatraAllow(w, r, http.MethodGet) {
			return
		}
		s.getMessage(w, id)
	case strings.HasPrefix(path, "/api/clients/"):
		id, ok := chatraPathID(path, "/api/clients/")
		if !ok {
			chatraWriteError(w, http.StatusNotFound, "no such API path")
			return
		}
		if !chatraAllow(w, r, http.MethodGet, http.MethodPut) {
			return
		}
		if r.Method == http.MethodGet {
			s.getClient(w, id)
		} else {
			s.updateClient(w, r, id)
		}
	default:
		chatraWriteError(w, http.StatusNotFound, "no such API path")
	}
}

// takeFault returns the first fault matching path and uses it up by one. s.mu is held.
func (s *Chatra) takeFault(path string) (ChatraFault, bool) {
	for i := range s.faults {
		f := &s.faults[i]
		if !strings.HasPrefix(path, f.PathPrefix) {
			continue
		}
		taken := *f
		f.Count--
		if f.Count <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return taken, true
	}
	return ChatraFault{}, false
}

// chatraSendFields are the string fields of a POST /api/messages/ body.
var chatraSendFields = []string{"clientId", "text", "agentId", "agentEmail", "agentName", "receivedFrom"}

func (s *Chatra) sendMessage(w http.ResponseWriter, r *http.Request) {
	body, ok := chatraReadObject(w, r)
	if !ok {
		return
	}
	f := make(map[string]string, len(chatraSendFields))
	for _, k := range chatraSendFields {
		v, present := body[k]
		if !present || v == nil {
			continue
		}
		str, isString := v.(string)
		if !isString {
			chatraWriteError(w, http.StatusBadRequest, k+" must be a string")
			return
		}
		f[k] = str
	}
	if strings.TrimSpace(f["clientId"]) == "" {
		chatraWriteError(w, http.StatusBadRequest, "clientId is required")
		return
	}
	if n := len(utf16.Encode([]rune(f["text"]))); n < 1 || n > chatra.MaxMessageLength {
		chatraWriteError(w, http.StatusBadRequest, fmt.Sprintf("text must be 1 to %d characters long, got %d", chatra.MaxMessageLength, n))
		return
	}
	agentID, email, name, tag := f["agentId"], f["agentEmail"], f["agentName"], f["receivedFrom"]
	switch {
	case agentID != "" && (email != "" || name != ""):
		chatraWriteError(w, http.StatusBadRequest, "pass either agentId, or agentEmail, agentName and receivedFrom")
		return
	case agentID == "" && (email == "" || name == "" || tag == ""):
		chatraWriteError(w, http.StatusBadRequest, "the sender is required: agentId, or all of agentEmail, agentName and receivedFrom")
		return
	case email != "":
		if _, err := mail.ParseAddress(email); err != nil || !strings.Contains(email, "@") {
			chatraWriteError(w, http.StatusBadRequest, "agentEmail is not an email address")
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[f["clientId"]]; !ok {
		chatraWriteError(w, http.StatusNotFound, "client not found")
		return
	}
	m := chatra.Message{
		ID:           chatraNewID(),
		Type:         chatra.MessageTypeAgent,
		Text:         f["text"],
		ClientID:     f["clientId"],
		ReceivedFrom: tag,
		CreatedAt:    time.UnixMilli(s.now().UnixMilli()).UTC(),
	}
	if agentID != "" {
		m.AgentID = agentID
		m.AgentName = s.agentsByID[agentID].name
	} else {
		key := strings.ToLower(email)
		a, known := s.agentsByEmail[key]
		if !known { // Chatra creates a placeholder agent for an unknown email
			a = chatraAgent{id: chatraNewID(), name: name, email: email}
			s.agentsByEmail[key] = a
			s.agentsByID[a.id] = a
		}
		m.AgentID, m.AgentName = a.id, a.name
	}
	s.messages = append(s.messages, m)
	chatraWriteJSON(w, http.StatusOK, m)
}

func (s *Chatra) getMessage(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.ID == id {
			chatraWriteJSON(w, http.StatusOK, m)
			return
		}
	}
	chatraWriteError(w, http.StatusNotFound, "message not found")
}

func (s *Chatra) getClient(w http.ResponseWriter, id string) {
	card, ok := s.Client(id)
	if !ok {
		chatraWriteError(w, http.StatusNotFound, "client not found")
		return
	}
	chatraWriteJSON(w, http.StatusOK, card)
}

// chatraUpdateFields are the card fields PUT /api/clients/{id} writes.
var chatraUpdateFields = []string{"name", "email", "phone", "notes"}

func (s *Chatra) updateClient(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := chatraReadObject(w, r)
	if !ok {
		return
	}
	update := make(map[string]string)
	for _, k := range chatraUpdateFields {
		v, present := body[k]
		if !present || v == nil {
			continue
		}
		str, isString := v.(string)
		if !isString {
			chatraWriteError(w, http.StatusBadRequest, k+" must be a string")
			return
		}
		update[k] = str
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	card, ok := s.clients[id]
	if !ok {
		chatraWriteError(w, http.StatusNotFound, "client not found")
		return
	}
	for k, v := range update {
		switch k {
		case "name":
			card.Name = v
		case "email":
			card.Email = v
		case "phone":
			card.Phone = v
		case "notes":
			// A card that keeps its notes in its basic info has them written there.
			if info, ok := card.Fields["basicInfo"].(map[string]any); ok && card.Notes == "" && info["notes"] != nil {
				info["notes"] = v
			} else {
				card.Notes = v
			}
		}
	}
	s.clients[id] = card
	chatraWriteJSON(w, http.StatusOK, chatraCloneCard(card))
}

// serveInspect serves the /_sandbox/ inspection API; path is relative to /_sandbox.
func (s *Chatra) serveInspect(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case path == "/messages":
		if !chatraAllow(w, r, http.MethodGet) {
			return
		}
		list := []chatra.Message{}
		clientID := r.URL.Query().Get("clientId")
		for _, m := range s.Messages() {
			if clientID == "" || m.ClientID == clientID {
				list = append(list, m)
			}
		}
		chatraWriteJSON(w, http.StatusOK, list)
	case strings.HasPrefix(path, "/clients/"):
		id, ok := chatraPathID(path, "/clients/")
		if !ok {
			chatraWriteError(w, http.StatusNotFound, "no such sandbox path")
			return
		}
		if !chatraAllow(w, r, http.MethodGet, http.MethodPut) {
			return
		}
		if r.Method == http.MethodGet {
			s.getClient(w, id)
			return
		}
		data, ok := chatraReadBody(w, r)
		if !ok {
			return
		}
		var card chatra.ClientCard
		if err := json.Unmarshal(data, &card); err != nil {
			chatraWriteError(w, http.StatusBadRequest, "the body must be a client card object")
			return
		}
		card.ID = id
		_ = s.PutClient(card) // id is not empty: chatraPathID refuses empty segments
		chatraWriteJSON(w, http.StatusOK, card)
	case path == "/faults":
		if !chatraAllow(w, r, http.MethodPost, http.MethodDelete) {
			return
		}
		if r.Method == http.MethodDelete {
			s.ClearFaults()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		data, ok := chatraReadBody(w, r)
		if !ok {
			return
		}
		var in struct {
			PathPrefix string `json:"pathPrefix"`
			Status     int    `json:"status"`
			RetryAfter string `json:"retryAfter"`
			Delay      string `json:"delay"`
			Count      int    `json:"count"`
		}
		if err := json.Unmarshal(data, &in); err != nil {
			chatraWriteError(w, http.StatusBadRequest, "the body must be a fault object: "+err.Error())
			return
		}
		f := ChatraFault{PathPrefix: in.PathPrefix, Status: in.Status, RetryAfter: in.RetryAfter, Count: in.Count}
		if in.Delay != "" {
			d, err := time.ParseDuration(in.Delay)
			if err != nil || d < 0 {
				chatraWriteError(w, http.StatusBadRequest, "delay must be a duration such as \"2s\"")
				return
			}
			f.Delay = d
		}
		if f.Status != 0 && (f.Status < 100 || f.Status > 999) {
			chatraWriteError(w, http.StatusBadRequest, "status must be an HTTP status code")
			return
		}
		s.InjectFault(f)
		w.WriteHeader(http.StatusNoContent)
	case path == "/paid-plan":
		if !chatraAllow(w, r, http.MethodPut) {
			return
		}
		data, ok := chatraReadBody(w, r)
		if !ok {
			return
		}
		var in struct {
			Active *bool `json:"active"`
		}
		if err := json.Unmarshal(data, &in); err != nil || in.Active == nil {
			chatraWriteError(w, http.StatusBadRequest, `the body must be {"active": true|false}`)
			return
		}
		s.SetPaidPlan(*in.Active)
		w.WriteHeader(http.StatusNoContent)
	default:
		chatraWriteError(w, http.StatusNotFound, "no such sandbox path")
	}
}

// chatraMaxBody bounds request bodies, as any real server does.
const chatraMaxBody = 1 << 20

// chatraReadBody reads a JSON request body, answering 415 or 413 itself when it cannot.
func chatraReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		chatraWriteError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return nil, false
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, chatraMaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			chatraWriteError(w, http.StatusRequestEntityTooLarge, "the body is too large")
		} else {
			chatraWriteError(w, http.StatusBadRequest, "cannot read the body")
		}
		return nil, false
	}
	return data, true
}

// chatraReadObject reads a JSON object body, answering 4xx itself when it cannot.
func chatraReadObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	data, ok := chatraReadBody(w, r)
	if !ok {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		chatraWriteError(w, http.StatusBadRequest, "the body must be a JSON object")
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		chatraWriteError(w, http.StatusBadRequest, "the body must be one JSON object")
		return nil, false
	}
	return obj, true
}

// chatraPathID returns the single escaped segment after prefix (one trailing slash
// allowed), unescaped; ok is false when there is none or more than one.
func chatraPathID(path, prefix string) (string, bool) {
	seg := strings.TrimSuffix(strings.TrimPrefix(path, prefix), "/")
	if seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}

// chatraAllow answers 405 unless r's method is one of methods.
func chatraAllow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	chatraWriteError(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

// chatraWriteJSON answers with v as JSON.
func chatraWriteJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"status":500,"error":"internal","message":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// chatraWriteError answers with an error object.
func chatraWriteError(w http.ResponseWriter, status int, message string) {
	kind := strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	if kind == "" {
		kind = "error"
	}
	chatraWriteJSON(w, status, map[string]any{"status": status, "error": kind, "message": message})
}

// chatraIDAlphabet is the alphabet of Meteor ids, which Chatra's ids are.
const chatraIDAlphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"

// chatraNewID returns a random 17-character id in Chatra's style.
func chatraNewID() string {
	b := make([]byte, 17)
	for i := range b {
		b[i] = chatraIDAlphabet[rand.IntN(len(chatraIDAlphabet))]
	}
	return string(b)
}

// chatraCloneCard copies a card deeply, so that callers cannot change stored state.
func chatraCloneCard(c chatra.ClientCard) chatra.ClientCard {
	if c.Fields != nil {
		c.Fields, _ = chatraClone(c.Fields).(map[string]any)
	}
	return c
}

// chatraClone copies decoded JSON deeply.
func chatraClone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = chatraClone(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = chatraClone(e)
		}
		return out
	}
	return v
}
