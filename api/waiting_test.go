package api_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/workflows"
)

const adminWaitingQueue = "admin-test-waiting"

// The first-response settings through the admin API: given at create, shown, changed
// field by field, refused by name when wrong.
func TestAdminFirstResponseSettings(t *testing.T) {
	e := newAdminEnv(t)
	created := e.create(t, set("options.firstResponse", map[string]any{"target": "5m", "reminderInterval": "15m",
		"workingHours": map[string]any{"timeZone": "Europe/Riga", "days": []string{"fri", "mon"}, "from": "09:00", "to": "18:00"}}))
	f := created.Options.FirstResponse
	if time.Duration(f.Target) != 5*time.Minute || time.Duration(f.ReminderInterval) != 15*time.Minute || f.MaxReminders != 0 ||
		f.WorkingHours.String() != "mon,fri 09:00-18:00 Europe/Riga" {
		t.Fatalf("created first response = %+v %+v", f, f.WorkingHours)
	}
	a := e.call(t, http.MethodPatch, "/api/v1/integrations/"+created.ID, `{"options":{"firstResponse":{"maxReminders":2,"workingHours":{}}}}`)
	f = decodeAnswer[api.IntegrationAnswer](t, a, http.StatusOK).Options.FirstResponse
	if time.Duration(f.Target) != 5*time.Minute || f.MaxReminders != 2 || f.WorkingHours != nil {
		t.Fatalf("patched first response = %s", a.body)
	}
	shown := decodeAnswer[api.IntegrationAnswer](t, e.call(t, http.MethodGet, "/api/v1/integrations/"+created.ID, ""), http.StatusOK)
	if shown.Options.FirstResponse.MaxReminders != 2 || time.Duration(shown.Options.FirstResponse.ReminderInterval) != 15*time.Minute {
		t.Fatalf("stored first response = %+v", shown.Options.FirstResponse)
	}
	for body, field := range map[string]string{
		`{"options":{"firstResponse":{"target":"soon"}}}`:                                  "options.firstResponse.target",
		`{"options":{"firstResponse":{"maxReminders":500}}}`:                               "options.firstResponse.maxReminders",
		`{"options":{"firstResponse":{"workingHours":{"timeZone":"Nowhere/City"}}}}`:       "options.firstResponse.workingHours.timeZone",
		`{"options":{"firstResponse":{"workingHours":{"timeZone":"UTC","days":["mon"]}}}}`: "options.firstResponse.workingHours.from",
		`{"options":{"firstResponse":{"remindEvery":"5m"}}}`:                               "options.firstResponse.remindEvery",
	} {
		adminError(t, e.call(t, http.MethodPatch, "/api/v1/integrations/"+created.ID, body), http.StatusBadRequest, chatrabridge.EINVALID, field)
	}
}

// TestAdminWaiting starts stand-in conversations whose start sets the search attributes
// a conversation keeps, some with a waiting customer.
func TestAdminWaiting(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	w := worker.New(temporalClient, adminWaitingQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(adminStateWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	shop, other := e.create(t, set("id", "shop-w")), e.create(t, set("id", "other-w"))

	now := time.Now().UTC().Truncate(time.Second)
	start := func(integration, chat string, since time.Time) {
		t.Helper()
		id := workflows.ConversationWorkflowID(integration, chat)
		sa := []temporal.SearchAttributeUpdate{workflows.SAIntegration.ValueSet(integration), workflows.SAChatID.ValueSet(chat),
			workflows.SAName.ValueSet("Customer " + chat), workflows.SATaskID.ValueSet(4242)}
		if !since.IsZero() {
			sa = append(sa, workflows.SAWaitingSince.ValueSet(since))
		}
		if _, err := temporalClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: adminWaitingQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(sa...)}, workflows.ConversationWorkflowName,
			workflows.ConversationInput{IntegrationID: integration, ChatID: chat}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = temporalClient.SignalWorkflow(ctx, id, "", adminSignalTestDone, nil) })
	}
	start(shop.ID, "C-LONG", now.Add(-20*time.Minute))
	start(shop.ID, "C-SHORT", now.Add(-2*time.Minute))
	start(shop.ID, "C-ANSWERED", time.Time{})
	start(other.ID, "C-OTHER", now.Add(-time.Hour))

	list := func(query string) []api.WaitingChat {
		t.Helper()
		return decodeAnswer[api.WaitingList](t, e.call(t, http.MethodGet, "/api/v1/integrations/"+shop.ID+"/waiting"+query, ""), http.StatusOK).Waiting
	}
	chats := func(l []api.WaitingChat) []string {
		var out []string
		for _, w := range l {
			out = append(out, w.ChatID)
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(list("")) < 2 && time.Now().Before(deadline) { // visibility catches up
		time.Sleep(100 * time.Millisecond)
	}
	all := list("")
	if got := chats(all); !slices.Equal(got, []string{"C-LONG", "C-SHORT"}) {
		t.Fatalf("waiting = %+v, want C-LONG then C-SHORT", all)
	}
	l := all[0]
	if l.WorkflowID != workflows.ConversationWorkflowID(shop.ID, "C-LONG") || l.CustomerName != "Customer C-LONG" || l.TaskID != 4242 ||
		!l.WaitingSince.Equal(now.Add(-20*time.Minute)) || l.WaitingSeconds < 20*60 {
		t.Errorf("the longest waiting = %+v", l)
	}
	for query, want := range map[string][]string{
		"?longerThan=10m":         {"C-LONG"},
		"?limit=1":                {"C-LONG"},
		"?longerThan=2h":          nil,
		"?longerThan=1m&limit=50": {"C-LONG", "C-SHORT"},
	} {
		if got := chats(list(query)); !slices.Equal(got, want) {
			t.Errorf("waiting%s = %v, want %v", query, got, want)
		}
	}
	if a := e.call(t, http.MethodGet, "/api/v1/integrations/"+shop.ID+"/waiting?longerThan=2h", ""); !strings.Contains(string(a.body), `"waiting":[]`) {
		t.Errorf("an empty list is not []: %s", a.body)
	}
	for query, field := range map[string]string{"?longerThan=soon": "longerThan", "?longerThan=-5m": "longerThan", "?limit=0": "limit", "?since=x": "since"} {
		adminError(t, e.call(t, http.MethodGet, "/api/v1/integrations/"+shop.ID+"/waiting"+query, ""), http.StatusBadRequest, chatrabridge.EINVALID, field)
	}
	adminError(t, e.call(t, http.MethodGet, "/api/v1/integrations/nope/waiting", ""), http.StatusNotFound, chatrabridge.ENOTFOUND, "")

	// The gauge: counted per integration, on /metrics.
	deadline = time.Now().Add(20 * time.Second)
	want := []string{`chatrabridge_conversations_waiting{integration="other-w"} 1`, `chatrabridge_conversations_waiting{integration="shop-w"} 2`}
	var body string
	for {
		if err := e.server.CountWaiting(ctx); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(body, "chatrabridge_conversations_waiting"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A deleted integration loses its series.
	if a := e.call(t, http.MethodDelete, "/api/v1/integrations/"+other.ID, ""); a.status != http.StatusNoContent {
		t.Fatal(a)
	}
	if err := e.server.CountWaiting(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `integration="other-w"`) {
		t.Errorf("the deleted integration is still counted:\n%s", grepLines(string(b), "chatrabridge_conversations_waiting"))
	}
}
