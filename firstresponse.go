package chatrabridge

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	// Every process carries the time zone database, so that working hours mean the same
	// on every worker (a workflow computes its deadlines from them) even where the
	// system has none (the distroless image).
	_ "time/tzdata"
)

// FirstResponse is an integration's first-response target: how long a customer's
// message may wait for an employee's answer before the task's assignees are reminded,
// how often they are reminded again, and the working hours outside which that clock
// does not run. The zero value sets no target: the conversation still knows how long
// its customer has waited (the CustomerWaitingSince search attribute), and reminds
// nobody.
type FirstResponse struct {
	// Target is how long a customer's message may wait, in working time; 0 is none.
	Target Duration `json:"target,omitempty"`
	// ReminderInterval is the working time between reminders after the first; 0
	// reminds once.
	ReminderInterval Duration `json:"reminderInterval,omitempty"`
	// MaxReminders caps the reminders of one wait; 0 means DefaultMaxReminders with a
	// ReminderInterval, else 1.
	MaxReminders int `json:"maxReminders,omitempty"`
	// WorkingHours, when set, stop the clock outside them.
	WorkingHours *WorkingHours `json:"workingHours,omitempty"`
}

// DefaultMaxReminders caps the reminders of one wait when a reminder interval is set
// and the maximum is not.
const DefaultMaxReminders = 3

// MaxMaxReminders bounds FirstResponse.MaxReminders.
const MaxMaxReminders = 100

// Reminders is how many reminders one wait gets at most: 0 without a target.
func (f FirstResponse) Reminders() int {
	switch {
	case f.Target <= 0:
		return 0
	case f.ReminderInterval <= 0:
		return 1
	case f.MaxReminders > 0:
		return f.MaxReminders
	}
	return DefaultMaxReminders
}

// ReminderAt is when the reminder after n sent ones is due for a wait that began at
// since, the last reminder having gone at last: the target after since, then the
// interval after the last reminder, both in working time. It reports false when no
// reminder is due any more (no target, or n reminders are the most).
func (f FirstResponse) ReminderAt(since, last time.Time, n int) (time.Time, bool) {
	if n >= f.Reminders() {
		return time.Time{}, false
	}
	if n == 0 {
		return f.WorkingHours.Add(since, time.Duration(f.Target)), true
	}
	return f.WorkingHours.Add(last, time.Duration(f.ReminderInterval)), true
}

// FirstResponseUpdate holds the given fields of FirstResponse. A WorkingHours given
// empty ({}) removes the working hours.
type FirstResponseUpdate struct {
	Target           *Duration     `json:"target,omitempty"`
	ReminderInterval *Duration     `json:"reminderInterval,omitempty"`
	MaxReminders     *int          `json:"maxReminders,omitempty"`
	WorkingHours     *WorkingHours `json:"workingHours,omitempty"`
}

// Apply writes the given fields of u into f.
func (u FirstResponseUpdate) Apply(f *FirstResponse) {
	set(&f.Target, u.Target)
	set(&f.ReminderInterval, u.ReminderInterval)
	set(&f.MaxReminders, u.MaxReminders)
	if u.WorkingHours != nil {
		w := *u.WorkingHours
		w.Days = slices.Clone(w.Days)
		f.WorkingHours = &w
	}
}

// Normalize trims and orders the working hours, and drops empty ones. It is idempotent.
func (f *FirstResponse) Normalize() {
	w := f.WorkingHours
	if w == nil {
		return
	}
	w.TimeZone, w.From, w.To = strings.TrimSpace(w.TimeZone), strings.TrimSpace(w.From), strings.TrimSpace(w.To)
	var days []string
	for _, d := range w.Days {
		d = strings.ToLower(strings.TrimSpace(d))
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	slices.SortStableFunc(days, func(a, b string) int { return dayIndex(a) - dayIndex(b) })
	w.Days = days
	if w.TimeZone == "" && len(w.Days) == 0 && w.From == "" && w.To == "" {
		f.WorkingHours = nil
	}
}

// Validate checks normalized settings; the error is EINVALID naming the field under
// prefix ("options.firstResponse").
func (f FirstResponse) Validate(prefix string) error {
	for _, d := range []struct {
		name string
		v    Duration
	}{{"target", f.Target}, {"reminderInterval", f.ReminderInterval}} {
		field := prefix + "." + d.name
		if d.v < 0 {
			return Invalid(field, "%s must be positive (a Go duration such as \"15m\"), or 0 for none", field)
		}
		if d.v > 0 && time.Duration(d.v) < time.Second {
			return Invalid(field, "%s must be at least 1s", field)
		}
		if time.Duration(d.v) > MaxOptionDuration {
			return Invalid(field, "%s is longer than %s", field, MaxOptionDuration)
		}
	}
	field := prefix + ".maxReminders"
	if f.MaxReminders < 0 || f.MaxReminders > MaxMaxReminders {
		return Invalid(field, "%s must be from 1 to %d, or 0 for the default (%d with a reminder interval, else 1)", field, MaxMaxReminders, DefaultMaxReminders)
	}
	if f.MaxReminders > 1 && f.ReminderInterval <= 0 {
		return Invalid(field, "%s of %d needs %s.reminderInterval: the time between reminders", field, f.MaxReminders, prefix)
	}
	if f.WorkingHours != nil {
		return f.WorkingHours.Validate(prefix + ".workingHours")
	}
	return nil
}

// WorkingHours are the hours in which the first-response clock runs: on Days (mon,
// tue, ... sun), From to To (HH:MM, To "24:00" for midnight), in TimeZone (an IANA
// name such as Europe/Riga). A nil *WorkingHours is every hour of every day.
type WorkingHours struct {
	TimeZone string   `json:"timeZone"`
	Days     []string `json:"days"`
	From     string   `json:"from"`
	To       string   `json:"to"`
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// dayIndex orders days Monday first; an unknown day last.
func dayIndex(d string) int {
	i := slices.Index(weekdays, d)
	if i < 0 {
		return 7
	}
	return (i + 6) % 7
}

// Validate checks normalized working hours; the error is EINVALID naming the field
// under prefix.
func (w WorkingHours) Validate(prefix string) error {
	if w.TimeZone == "" {
		return Invalid(prefix+".timeZone", "%s.timeZone is required: an IANA time zone such as Europe/Riga or UTC", prefix)
	}
	if _, err := location(w.TimeZone); err != nil {
		return Invalid(prefix+".timeZone", "%s is not a time zone: use an IANA name such as Europe/Riga or UTC", quote(w.TimeZone))
	}
	if len(w.Days) == 0 {
		return Invalid(prefix+".days", "%s.days is required: the working days, such as [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]", prefix)
	}
	for n, d := range w.Days {
		if !slices.Contains(weekdays, d) {
			return Invalid(fmt.Sprintf("%s.days[%d]", prefix, n), "%s is not a day: use mon, tue, wed, thu, fri, sat or sun", quote(d))
		}
	}
	from, ok := clock(w.From)
	if !ok || from >= 24*time.Hour {
		return Invalid(prefix+".from", "%s.from must be a time of day such as \"09:00\"", prefix)
	}
	to, ok := clock(w.To)
	if !ok {
		return Invalid(prefix+".to", "%s.to must be a time of day such as \"18:00\" (\"24:00\" for midnight)", prefix)
	}
	if to <= from {
		return Invalid(prefix+".to", "%s.to must be later than %s.from: working hours end on the day they begin", prefix, prefix)
	}
	return nil
}

// clock reads "HH:MM" (00:00 to 24:00) as the time since midnight.
func clock(s string) (time.Duration, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, false
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, true
}

var locations sync.Map // time zone name -> *time.Location

// location loads a time zone once per process. "Local" is refused: it would differ
// between machines.
func location(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || strings.EqualFold(name, "Local") {
		return nil, fmt.Errorf("time zone %q: name one, such as UTC", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// window returns the working interval of the day that begins at midnight day (in the
// zone), and false on a day off.
func (w *WorkingHours) window(day time.Time, from, to time.Duration) (time.Time, time.Time, bool) {
	if !slices.Contains(w.Days, weekdays[day.Weekday()]) {
		return time.Time{}, time.Time{}, false
	}
	at := func(d time.Duration) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), int(d/time.Hour), int(d%time.Hour/time.Minute), 0, 0, day.Location())
	}
	return at(from), at(to), true
}

// maxDays bounds the days Add and Between walk (a target of up to MaxOptionDuration of
// working time, one working minute a week, would need more; no sane setting does).
const maxDays = 20000

// Add returns the instant at which d of working time has passed since start: start+d
// for nil working hours, or hours that cannot be read (Validate refuses them). It is a
// pure function of its arguments (and the time zone database), so a workflow may call
// it.
func (w *WorkingHours) Add(start time.Time, d time.Duration) time.Time {
	loc, from, to, ok := w.parsed()
	if !ok || d <= 0 {
		return start.Add(max(d, 0))
	}
	t := start.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for range maxDays {
		if begin, end, ok := w.window(day, from, to); ok && t.Before(end) {
			if t.Before(begin) {
				t = begin
			}
			left := end.Sub(t)
			if d <= left {
				return t.Add(d).In(start.Location())
			}
			d -= left
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
		t = day
	}
	return t.Add(d).In(start.Location())
}

// Between returns the working time from a to b (0 when b is not after a).
func (w *WorkingHours) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	loc, from, to, ok := w.parsed()
	if !ok {
		return b.Sub(a)
	}
	var sum time.Duration
	t := a.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for range maxDays {
		if !day.Before(b) {
			break
		}
		if begin, end, ok := w.window(day, from, to); ok {
			lo, hi := begin, end
			if t.After(lo) {
				lo = t
			}
			if b.Before(hi) {
				hi = b
			}
			if hi.After(lo) {
				sum += hi.Sub(lo)
			}
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	return sum
}

func (w *WorkingHours) parsed() (*time.Location, time.Duration, time.Duration, bool) {
	if w == nil || len(w.Days) == 0 {
		return nil, 0, 0, false
	}
	loc, err := location(w.TimeZone)
	from, ok1 := clock(w.From)
	to, ok2 := clock(w.To)
	if err != nil || !ok1 || !ok2 || to <= from {
		return nil, 0, 0, false
	}
	return loc, from, to, true
}

// String writes the hours as ParseWorkingHours reads them: "mon-fri 09:00-18:00
// Europe/Riga"; "always" for nil.
func (w *WorkingHours) String() string {
	if w == nil {
		return "always"
	}
	var parts []string
	for i := 0; i < len(w.Days); {
		j := i
		for j+1 < len(w.Days) && dayIndex(w.Days[j+1]) == dayIndex(w.Days[j])+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, w.Days[i]+"-"+w.Days[j])
		case j > i:
			parts = append(parts, w.Days[i], w.Days[j])
		default:
			parts = append(parts, w.Days[i])
		}
		i = j + 1
	}
	return strings.Join(parts, ",") + " " + w.From + "-" + w.To + " " + w.TimeZone
}

// ParseWorkingHours reads working hours written as "<days> <from>-<to> <time zone>",
// such as "mon-fri 09:00-18:00 Europe/Riga" or "mon,wed,sat-sun 10:00-14:00 UTC" (days
// are lists of days and ranges of days). It checks the form only; Validate checks the
// values.
func ParseWorkingHours(s string) (WorkingHours, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return WorkingHours{}, fmt.Errorf("%s: write working hours as \"mon-fri 09:00-18:00 Europe/Riga\"", quote(s))
	}
	var w WorkingHours
	for _, part := range strings.Split(strings.ToLower(f[0]), ",") {
		a, b, isRange := strings.Cut(part, "-")
		i, j := slices.Index(weekdays, a), slices.Index(weekdays, b)
		if !isRange {
			j = i
		}
		if i < 0 || j < 0 {
			return WorkingHours{}, fmt.Errorf("%s: days are mon, tue, wed, thu, fri, sat, sun, lists (mon,wed) and ranges (mon-fri)", quote(part))
		}
		for k := dayIndex(weekdays[i]); ; k++ {
			w.Days = append(w.Days, weekdays[(k+1)%7])
			if k%7 == dayIndex(weekdays[j]) {
				break
			}
		}
	}
	var ok bool
	if w.From, w.To, ok = strings.Cut(f[1], "-"); !ok {
		return WorkingHours{}, fmt.Errorf("%s: write the hours as 09:00-18:00", quote(f[1]))
	}
	w.TimeZone = f[2]
	return w, nil
}
