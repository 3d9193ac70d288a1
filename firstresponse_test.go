package chatrabridge_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
)

var riga = mustZone("Europe/Riga")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// officeHours are Monday to Friday, 09:00 to 18:00 in Riga.
func officeHours() *chatrabridge.WorkingHours {
	return &chatrabridge.WorkingHours{TimeZone: "Europe/Riga", Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "18:00"}
}

func TestWorkingHoursAdd(t *testing.T) {
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, riga) }
	w := officeHours()
	for _, c := range []struct {
		name  string
		start time.Time
		d     time.Duration
		want  time.Time
	}{
		{"within the day", at(2026, 11, 24, 10, 0), 5 * time.Minute, at(2026, 11, 24, 10, 5)},
		{"before opening", at(2026, 11, 24, 7, 30), 5 * time.Minute, at(2026, 11, 24, 9, 5)},
		{"across the evening", at(2026, 11, 24, 17, 58), 5 * time.Minute, at(2026, 11, 25, 9, 3)},
		{"ends at closing", at(2026, 11, 24, 17, 55), 5 * time.Minute, at(2026, 11, 24, 18, 0)},
		{"after closing", at(2026, 11, 24, 18, 0), time.Minute, at(2026, 11, 25, 9, 1)},
		{"friday evening to monday", at(2026, 11, 27, 17, 50), 20 * time.Minute, at(2026, 11, 30, 9, 10)},
		{"a weekend message", at(2026, 11, 28, 12, 0), time.Hour, at(2026, 11, 30, 10, 0)},
		{"more than a working day", at(2026, 11, 24, 9, 0), 10 * time.Hour, at(2026, 11, 25, 10, 0)},
		{"no time at all", at(2026, 11, 28, 12, 0), 0, at(2026, 11, 28, 12, 0)},
		// Riga moves its clocks on the last Sundays of March and October: a working day
		// is 9 hours of the wall clock either side of the change.
		{"across summer time", at(2026, 3, 27, 17, 0), 2 * time.Hour, at(2026, 3, 30, 10, 0)},
	} {
		if got := w.Add(c.start, c.d); !got.Equal(c.want) {
			t.Errorf("%s: Add(%s, %s) = %s, want %s", c.name, c.start, c.d, got.In(riga), c.want)
		}
		if got := w.Between(c.start, c.want); got != c.d {
			t.Errorf("%s: Between(%s, %s) = %s, want %s", c.name, c.start, c.want, got, c.d)
		}
	}
	// Without working hours the clock always runs; the result keeps the start's zone.
	var none *chatrabridge.WorkingHours
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	if got := none.Add(start, time.Hour); !got.Equal(start.Add(time.Hour)) || got.Location() != time.UTC {
		t.Errorf("nil hours: Add = %s", got)
	}
	if got := w.Add(start, time.Minute); got.Location() != time.UTC {
		t.Errorf("Add changed the zone: %s", got)
	}
	if got := none.Between(start, start.Add(time.Hour)); got != time.Hour {
		t.Errorf("nil hours: Between = %s", got)
	}
	// A day that works until midnight.
	late := &chatrabridge.WorkingHours{TimeZone: "UTC", Days: []string{"sat"}, From: "22:00", To: "24:00"}
	if got, want := late.Add(time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC), 2*time.Hour), time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("until midnight: Add = %s, want %s", got, want)
	}
}

func TestFirstResponseReminders(t *testing.T) {
	since := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC) // 10:00 in Riga, a Tuesday
	f := chatrabridge.FirstResponse{Target: chatrabridge.Duration(5 * time.Minute), ReminderInterval: chatrabridge.Duration(time.Hour),
		MaxReminders: 2, WorkingHours: officeHours()}
	first, ok := f.ReminderAt(since, time.Time{}, 0)
	if !ok || !first.Equal(since.Add(5*time.Minute)) {
		t.Errorf("first reminder at %s, %v", first, ok)
	}
	last := time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC) // 17:30 in Riga
	second, ok := f.ReminderAt(since, last, 1)
	if want := time.Date(2026, 11, 25, 7, 30, 0, 0, time.UTC); !ok || !second.Equal(want) { // 09:30 the next day
		t.Errorf("second reminder at %s, %v; want %s", second, ok, want)
	}
	if _, ok := f.ReminderAt(since, second, 2); ok {
		t.Error("a third reminder is due past maxReminders 2")
	}
	for _, c := range []struct {
		f    chatrabridge.FirstResponse
		want int
	}{
		{chatrabridge.FirstResponse{}, 0},
		{chatrabridge.FirstResponse{ReminderInterval: chatrabridge.Duration(time.Minute), MaxReminders: 5}, 0},
		{chatrabridge.FirstResponse{Target: chatrabridge.Duration(time.Minute)}, 1},
		{chatrabridge.FirstResponse{Target: chatrabridge.Duration(time.Minute), ReminderInterval: chatrabridge.Duration(time.Minute)}, chatrabridge.DefaultMaxReminders},
		{chatrabridge.FirstResponse{Target: chatrabridge.Duration(time.Minute), ReminderInterval: chatrabridge.Duration(time.Minute), MaxReminders: 7}, 7},
	} {
		if got := c.f.Reminders(); got != c.want {
			t.Errorf("%+v: Reminders() = %d, want %d", c.f, got, c.want)
		}
	}
}

func TestFirstResponseSettings(t *testing.T) {
	u := valid()
	u.Options = &chatrabridge.OptionsUpdate{FirstResponse: &chatrabridge.FirstResponseUpdate{
		Target: ptr(chatrabridge.Duration(5 * time.Minute)),
		WorkingHours: &chatrabridge.WorkingHours{TimeZone: " Europe/Riga ", Days: []string{"Fri", "mon", "tue", "mon"},
			From: "09:00", To: "18:00"},
	}}
	i, err := chatrabridge.NewIntegration(u)
	if err != nil {
		t.Fatal(err)
	}
	f := i.Options.FirstResponse
	if f.Target != chatrabridge.Duration(5*time.Minute) || f.WorkingHours.TimeZone != "Europe/Riga" ||
		!slices.Equal(f.WorkingHours.Days, []string{"mon", "tue", "fri"}) {
		t.Fatalf("normalized = %+v %+v", f, f.WorkingHours)
	}
	b, err := json.Marshal(i.Options)
	if err != nil {
		t.Fatal(err)
	}
	var back chatrabridge.Options
	if err := json.Unmarshal(b, &back); err != nil || back.FirstResponse.Target != f.Target || back.FirstResponse.WorkingHours.String() != "mon,tue,fri 09:00-18:00 Europe/Riga" {
		t.Fatalf("round trip %s: %+v %v", b, back.FirstResponse, err)
	}
	// An update changes only what it gives; empty working hours remove them.
	chatrabridge.FirstResponseUpdate{ReminderInterval: ptr(chatrabridge.Duration(time.Hour))}.Apply(&i.Options.FirstResponse)
	if i.Options.FirstResponse.Target != f.Target || i.Options.FirstResponse.WorkingHours == nil {
		t.Fatalf("after an interval update: %+v", i.Options.FirstResponse)
	}
	chatrabridge.FirstResponseUpdate{WorkingHours: &chatrabridge.WorkingHours{}}.Apply(&i.Options.FirstResponse)
	i.Normalize()
	if i.Options.FirstResponse.WorkingHours != nil || i.Validate() != nil {
		t.Fatalf("empty working hours kept: %+v", i.Options.FirstResponse.WorkingHours)
	}

	wh := func(zone string, days []string, from, to string) *chatrabridge.WorkingHours {
		return &chatrabridge.WorkingHours{TimeZone: zone, Days: days, From: from, To: to}
	}
	mon := []string{"mon"}
	for _, c := range []struct {
		field string
		fr    chatrabridge.FirstResponseUpdate
	}{
		{"options.firstResponse.target", chatrabridge.FirstResponseUpdate{Target: ptr(chatrabridge.Duration(-time.Minute))}},
		{"options.firstResponse.reminderInterval", chatrabridge.FirstResponseUpdate{ReminderInterval: ptr(chatrabridge.Duration(time.Millisecond))}},
		{"options.firstResponse.maxReminders", chatrabridge.FirstResponseUpdate{Target: ptr(chatrabridge.Duration(time.Minute)), MaxReminders: ptr(3)}},
		{"options.firstResponse.maxReminders", chatrabridge.FirstResponseUpdate{MaxReminders: ptr(101)}},
		{"options.firstResponse.workingHours.timeZone", chatrabridge.FirstResponseUpdate{WorkingHours: wh("Mars/Olympus", mon, "09:00", "10:00")}},
		{"options.firstResponse.workingHours.timeZone", chatrabridge.FirstResponseUpdate{WorkingHours: wh("Local", mon, "09:00", "10:00")}},
		{"options.firstResponse.workingHours.days", chatrabridge.FirstResponseUpdate{WorkingHours: wh("UTC", nil, "09:00", "10:00")}},
		{"options.firstResponse.workingHours.days[0]", chatrabridge.FirstResponseUpdate{WorkingHours: wh("UTC", []string{"monday"}, "09:00", "10:00")}},
		{"options.firstResponse.workingHours.from", chatrabridge.FirstResponseUpdate{WorkingHours: wh("UTC", mon, "9", "10:00")}},
		{"options.firstResponse.workingHours.to", chatrabridge.FirstResponseUpdate{WorkingHours: wh("UTC", mon, "18:00", "09:00")}},
		{"options.firstResponse.workingHours.to", chatrabridge.FirstResponseUpdate{WorkingHours: wh("UTC", mon, "09:00", "24:30")}},
	} {
		u := valid()
		u.Options = &chatrabridge.OptionsUpdate{FirstResponse: &c.fr}
		_, err := chatrabridge.NewIntegration(u)
		if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID || chatrabridge.ErrorField(err) != c.field {
			t.Errorf("%+v: error %v names %q, want %q", c.fr, err, chatrabridge.ErrorField(err), c.field)
		}
	}
}

func TestParseWorkingHours(t *testing.T) {
	for in, want := range map[string]string{
		"mon-fri 09:00-18:00 Europe/Riga":  "mon-fri 09:00-18:00 Europe/Riga",
		"MON,wed,sat-sun 10:00-14:00 UTC":  "mon,wed,sat,sun 10:00-14:00 UTC",
		"fri-mon 08:00-24:00 Europe/Paris": "mon,fri-sun 08:00-24:00 Europe/Paris",
		"tue 09:00-17:00 UTC":              "tue 09:00-17:00 UTC",
	} {
		w, err := chatrabridge.ParseWorkingHours(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		f := chatrabridge.FirstResponse{WorkingHours: &w}
		f.Normalize()
		if got := f.WorkingHours.String(); got != want {
			t.Errorf("%q reads as %q, want %q", in, got, want)
		}
		if err := f.Validate("wh"); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, bad := range []string{"", "mon-fri 09:00-18:00", "weekdays 09:00-18:00 UTC", "mon 0900 UTC", "mon-fri 09:00-18:00 UTC extra"} {
		if _, err := chatrabridge.ParseWorkingHours(bad); err == nil {
			t.Errorf("%q was read", bad)
		}
	}
}
