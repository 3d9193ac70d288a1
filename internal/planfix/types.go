package planfix

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
)

// PersonID names a person the way Planfix does: "user:5" for an employee, "contact:12"
// for a contact (or company).
type PersonID string

// UserID returns the PersonID of employee id ("user:<id>").
func UserID(id int64) PersonID { return PersonID("user:" + strconv.FormatInt(id, 10)) }

// ContactID returns the PersonID of contact id ("contact:<id>").
func ContactID(id int64) PersonID { return PersonID("contact:" + strconv.FormatInt(id, 10)) }

// User returns the employee number p names, and false when p does not name an employee.
func (p PersonID) User() (int64, bool) { return p.number("user") }

// Contact returns the contact number p names, and false when p does not name a contact.
func (p PersonID) Contact() (int64, bool) { return p.number("contact") }

// Same reports whether p and o name the same contact or employee.
func (p PersonID) Same(o PersonID) bool {
	if n, ok := p.Contact(); ok {
		m, ok := o.Contact()
		return ok && n == m
	}
	if n, ok := p.User(); ok {
		m, ok := o.User()
		return ok && n == m
	}
	return strings.EqualFold(string(p), string(o))
}

func (p PersonID) number(kind string) (int64, bool) {
	k, n, ok := strings.Cut(string(p), ":")
	if !ok || !strings.EqualFold(k, kind) {
		return 0, false
	}
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// UnmarshalJSON accepts a string ("user:5") or, leniently, a bare number, which it keeps
// as its decimal text.
func (p *PersonID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*p = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = PersonID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("planfix person id: want a string or a number, got %.40s", b)
	}
	*p = PersonID(n.String())
	return nil
}

// Person is a reference to an employee or a contact as responses carry it.
type Person struct {
	ID   PersonID `json:"id"`
	Name string   `json:"name,omitempty"`
}

// Group is a group of employees (or of contacts).
type Group struct {
	ID   int64  `json:"id"`
	Name string `json:"name,omitempty"`
}

// People lists the employees, contacts and groups in a role (assignees, participants,
// auditors).
type People struct {
	Users  []Person `json:"users,omitempty"`
	Groups []Group  `json:"groups,omitempty"`
}

// Entity is a reference by number (a template, a task, a project).
type Entity struct {
	ID int64 `json:"id"`
}

// TimePoint is a date and time as Planfix writes it: Date "dd-MM-yyyy", Time "HH:mm" and
// DateTime in ISO form ("2022-06-01T12:25Z").
type TimePoint struct {
	Date     string `json:"date,omitempty"`
	Time     string `json:"time,omitempty"`
	DateTime string `json:"datetime,omitempty"`
}

// Parse returns the instant t names: DateTime when it parses, else Date and Time read in
// UTC. It reports false when neither parses.
func (t TimePoint) Parse() (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04Z07:00", time.RFC3339, "2006-01-02T15:04:05Z07:00"} {
		if v, err := time.Parse(layout, t.DateTime); err == nil {
			return v, true
		}
	}
	if t.Date == "" {
		return time.Time{}, false
	}
	hm := t.Time
	if hm == "" {
		hm = "00:00"
	}
	v, err := time.Parse("02-01-2006 15:04", t.Date+" "+hm)
	return v, err == nil
}

// Status is a task status. Each process has its own statuses; a task is active while its
// status is.
type Status struct {
	ID       int64  `json:"id"`
	Name     string `json:"name,omitempty"`
	Color    string `json:"color,omitempty"`
	IsActive bool   `json:"isActive"`
}

// Process is a task process, the owner of a set of statuses.
type Process struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Template is a task or contact template. ProcessID is set for task templates when
// Planfix reports it.
type Template struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	ProcessID int64  `json:"processId,omitempty"`
}

// File is a file attached to a comment, a task or a contact.
type File struct {
	ID   int64  `json:"id"`
	Name string `json:"name,omitempty"`
	Size int64  `json:"size,omitempty"`
}

// Phone types, the values of Phone.Type.
const (
	PhoneMobile = 1
	PhoneWork   = 2
	PhoneHome   = 3
	PhoneOther  = 4
)

// Phone is a contact's phone number; Type is one of the Phone constants.
type Phone struct {
	Number       string `json:"number"`
	MaskedNumber string `json:"maskedNumber,omitempty"`
	Type         int    `json:"type,omitempty"`
}

// Task is a task as GET /task/{id} and POST /task/list return it. Planfix returns only
// the fields asked for, so a field that was not requested is zero (Status nil).
type Task struct {
	ID             int64      `json:"id"`
	SourceObjectID string     `json:"sourceObjectId,omitempty"`
	Name           string     `json:"name,omitempty"`
	Description    string     `json:"description,omitempty"`
	Status         *Status    `json:"status,omitempty"`
	ProcessID      int64      `json:"processId,omitempty"`
	Template       *Entity    `json:"template,omitempty"`
	Assigner       *Person    `json:"assigner,omitempty"`
	Assignees      *People    `json:"assignees,omitempty"`
	Counterparty   *Person    `json:"counterparty,omitempty"`
	DateTime       *TimePoint `json:"dateTime,omitempty"`
	IsDeleted      bool       `json:"isDeleted,omitempty"`
}

// IsActive reports whether the task's status is active. It is false when the status was
// not requested (see DefaultTaskFields).
func (t *Task) IsActive() bool { return t.Status != nil && t.Status.IsActive && !t.IsDeleted }

// Contact is a contact (or company) as POST /contact/list returns it.
type Contact struct {
	ID             int64   `json:"id"`
	SourceObjectID string  `json:"sourceObjectId,omitempty"`
	Template       *Entity `json:"template,omitempty"`
	Name           string  `json:"name,omitempty"`
	Midname        string  `json:"midname,omitempty"`
	Lastname       string  `json:"lastname,omitempty"`
	Email          string  `json:"email,omitempty"`
	Phones         []Phone `json:"phones,omitempty"`
	Description    string  `json:"description,omitempty"`
	IsCompany      bool    `json:"isCompany,omitempty"`
	IsDeleted      bool    `json:"isDeleted,omitempty"`
}

// Comment is a comment (formerly "action") on a task or a contact. Owner is who wrote it;
// Description is HTML.
type Comment struct {
	ID             int64      `json:"id"`
	SourceObjectID string     `json:"sourceObjectId,omitempty"`
	DateTime       *TimePoint `json:"dateTime,omitempty"`
	Type           string     `json:"type,omitempty"`
	FromType       string     `json:"fromType,omitempty"`
	Description    string     `json:"description,omitempty"`
	Task           *Entity    `json:"task,omitempty"`
	Contact        *Person    `json:"contact,omitempty"`
	Owner          *Person    `json:"owner,omitempty"`
	IsDeleted      bool       `json:"isDeleted,omitempty"`
	IsHidden       bool       `json:"isHidden,omitempty"`
	Files          []File     `json:"files,omitempty"`
}

// User is an employee.
type User struct {
	ID              int64    `json:"id"`
	Name            string   `json:"name,omitempty"`
	Midname         string   `json:"midname,omitempty"`
	Lastname        string   `json:"lastname,omitempty"`
	Email           string   `json:"email,omitempty"`
	SecondaryEmails []string `json:"secondaryEmails,omitempty"`
	Role            string   `json:"role,omitempty"`
	Status          string   `json:"status,omitempty"`
	IsDeleted       bool     `json:"isDeleted,omitempty"`
}

// FullName returns the user's name and last name joined by a space.
func (u *User) FullName() string { return strings.TrimSpace(u.Name + " " + u.Lastname) }

// Failure is one field POST /task/{id} or POST /contact/{id} did not change.
type Failure struct {
	Field string `json:"field"`
	Error string `json:"error"`
}

// UpdateResult is the answer to an update. Accepted means Planfix answered 202: the change
// is queued and will be applied later. Failures lists the fields Planfix did not change.
type UpdateResult struct {
	Accepted bool
	Failures []Failure
}

// Filter operators.
const (
	OpEqual    = "equal"
	OpNotEqual = "notequal"
	OpGreater  = "gt"
	OpLess     = "lt"
)

// Task filter types (ComplexTaskFilter in the spec) the bridge uses.
const (
	TaskFilterAssigner = 1 // value: a PersonID such as "contact:5"
	TaskFilterAssignee = 2 // value: a PersonID
	// TaskFilterCounterparty: value the contact's number, as the spec's example
	// ("Filter by counterparty": type 7, value 3); its enum leaves the type unnamed.
	TaskFilterCounterparty = 7
	TaskFilterStatus       = 10 // value: a status id or a list of them
	TaskFilterProcess      = 24 // value: a process id
	TaskFilterTemplate     = 51 // value: a template id or a list of them
	TaskFilterNumber       = 57 // value: a task number or a list of them
)

// Contact filter types (ComplexContactFilter in the spec) the bridge uses.
const (
	ContactFilterNamePart  = 4001 // value: part of the name
	ContactFilterPhone     = 4003 // value: a phone number
	ContactFilterEmailPart = 4005 // value: part of the email
	ContactFilterTemplate  = 4016 // value: a contact template id
	// ContactFilterEmail matches the email exactly. The spec uses it in its "filter by
	// email" example but leaves it out of the type enum; PLANFIX.md names it.
	ContactFilterEmail = 4026
)

// Filter is one condition of a list call ("complex filter" in the spec). Field names the
// custom field for custom-field filter types.
type Filter struct {
	Type     int    `json:"type"`
	Operator string `json:"operator"`
	Value    any    `json:"value"`
	Field    int64  `json:"field,omitempty"`
}

// TextToHTML turns plain text written by a visitor or an agent into HTML for a Planfix
// description or comment: it escapes &, <, >, ' and " and turns every line break (\n,
// \r\n or \r) into <br>.
func TextToHTML(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br>")
}

// sourceNamespace is the UUID namespace of SourceObjectID (a random UUID fixed forever:
// changing it would change every id the bridge ever derived).
var sourceNamespace = [16]byte{0x6f, 0x3c, 0x1e, 0x52, 0x8a, 0x4d, 0x4b, 0x0e, 0x9d, 0x61, 0x2f, 0x7a, 0xc5, 0x10, 0x93, 0xe8}

// SourceObjectID derives a deterministic sourceObjectId (a name-based UUID, version 5)
// from parts such as the integration id and a Chatra chat or message id. The same parts
// always give the same id and different parts different ids, so a retried create can look
// for what an earlier attempt made.
func SourceObjectID(parts ...string) string {
	h := sha1.New()
	h.Write(sourceNamespace[:])
	for _, p := range parts {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// RefLine names sid in the description of a task or contact the bridge creates, so that
// a retried create finds it whatever Planfix does with sourceObjectId.
func RefLine(sid string) string { return "chatrabridge ref " + sid }

// flexInt decodes a number that may arrive as a JSON number (1 or 1.0) or a numeric
// string; the spec types created ids as "number".
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*f = flexInt(n)
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || v != float64(int64(v)) {
		return fmt.Errorf("planfix: want an integer, got %.40s", b)
	}
	*f = flexInt(int64(v))
	return nil
}

// failureList decodes "failures", which Planfix sends as one object or as an array.
type failureList []Failure

func (l *failureList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case b[0] == '[':
		var fs []Failure
		if err := json.Unmarshal(b, &fs); err != nil {
			return err
		}
		*l = fs
		return nil
	case b[0] == '{':
		var f Failure
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		if f == (Failure{}) {
			*l = nil
			return nil
		}
		*l = failureList{f}
		return nil
	}
	return fmt.Errorf("planfix: failures: want an object or an array, got %.40s", b)
}
