package chatrabridge_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

func ptr[T any](v T) *T { return &v }

func valid() chatrabridge.IntegrationUpdate {
	return chatrabridge.IntegrationUpdate{
		Name:   ptr("Shop"),
		Chatra: &chatrabridge.ChatraUpdate{PublicKey: ptr("pk"), SecretKey: ptr(secrets.String(" sk\n"))},
		Planfix: &chatrabridge.PlanfixUpdate{AccountURL: ptr(" https://example.planfix.com/REST/ "), Token: ptr(secrets.String("tok")),
			TaskTemplateID: ptr[int64](101), ContactTemplateID: ptr[int64](7),
			AssigneeUserIDs: &[]int64{6, 5, 6}, EmployeeUserIDs: &[]int64{9, 8, 9}},
	}
}

func TestNewIntegrationDefaultsAndNormalization(t *testing.T) {
	i, err := chatrabridge.NewIntegration(valid())
	if err != nil {
		t.Fatal(err)
	}
	if i.ID != "" || i.Chatra.APIURL != chatrabridge.DefaultChatraAPIURL || i.Chatra.AgentName != "Shop" ||
		i.Chatra.SecretKey.Reveal() != "sk" || !i.Chatra.HasSecretKey || !i.Planfix.HasToken ||
		i.Planfix.AccountURL != "https://example.planfix.com" || i.Planfix.RESTURL() != "https://example.planfix.com/rest" ||
		!slices.Equal(i.Planfix.AssigneeUserIDs, []int64{6, 5}) || !slices.Equal(i.Planfix.EmployeeUserIDs, []int64{9, 8}) ||
		time.Duration(i.Options.LateReplyWindow) != chatrabridge.DefaultLateReplyWindow || time.Duration(i.Options.IdleTimeout) != chatrabridge.DefaultIdleTimeout ||
		i.Options.NewConversationsPerMinute != chatrabridge.DefaultNewConversationsPerMinute || i.Options.MaxHeldReplies != chatrabridge.DefaultMaxHeldReplies ||
		i.Options.TrustEmailClaims {
		t.Fatalf("%+v", i)
	}
	// The secrets never reach JSON, and print redacted.
	b, _ := json.Marshal(i)
	if strings.Contains(string(b), `"sk"`) || strings.Contains(string(b), "tok") || !strings.Contains(string(b), `"hasSecretKey":true`) {
		t.Fatalf("JSON = %s", b)
	}
	u := valid()
	u.ID = ptr("shop_1-A")
	if i, err := chatrabridge.NewIntegration(u); err != nil || i.ID != "shop_1-A" {
		t.Fatalf("chosen id: %v", err)
	}
}

func TestIntegrationValidation(t *testing.T) {
	cases := []struct {
		edit  func(u *chatrabridge.IntegrationUpdate)
		field string
	}{
		{func(u *chatrabridge.IntegrationUpdate) { u.ID = ptr("-x") }, "id"},
		{func(u *chatrabridge.IntegrationUpdate) { u.ID = ptr(strings.Repeat("a", 65)) }, "id"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Name = ptr("a\x00b") }, "name"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Chatra.APIURL = ptr("https://app.chatra.io/?x=1") }, "chatra.apiUrl"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Chatra.PublicKey = ptr("p k") }, "chatra.publicKey"},
		{func(u *chatrabridge.IntegrationUpdate) {
			u.Chatra.SecretKey = ptr(secrets.String(strings.Repeat("s", 1025)))
		}, "chatra.secretKey"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Chatra.AgentEmail = ptr("Anna <anna@example.com>") }, "chatra.agentEmail"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Chatra.AgentName = ptr(strings.Repeat("n", 201)) }, "chatra.agentName"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Planfix.AccountURL = ptr("https://") }, "planfix.accountUrl"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Planfix.Token = ptr(secrets.String("")) }, "planfix.token"},
		{func(u *chatrabridge.IntegrationUpdate) { u.Planfix.TaskTemplateID = ptr[int64](-1) }, "planfix.taskTemplateId"},
		{func(u *chatrabridge.IntegrationUpdate) {
			ids := make([]int64, 101)
			for n := range ids {
				ids[n] = int64(n + 1)
			}
			u.Planfix.AssigneeUserIDs = &ids
		}, "planfix.assigneeUserIds"},
		{func(u *chatrabridge.IntegrationUpdate) {
			u.Options = &chatrabridge.OptionsUpdate{IdleTimeout: ptr(chatrabridge.Duration(-time.Second))}
		}, "options.idleTimeout"},
		{func(u *chatrabridge.IntegrationUpdate) {
			u.Options = &chatrabridge.OptionsUpdate{NewConversationsPerMinute: ptr(-1)}
		}, "options.newConversationsPerMinute"},
		{func(u *chatrabridge.IntegrationUpdate) {
			u.Options = &chatrabridge.OptionsUpdate{MaxHeldReplies: ptr(chatrabridge.MaxOptionCount + 1)}
		}, "options.maxHeldReplies"},
	}
	for _, c := range cases {
		u := valid()
		c.edit(&u)
		_, err := chatrabridge.NewIntegration(u)
		if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID || chatrabridge.ErrorField(err) != c.field {
			t.Errorf("want invalid %s, got %v (field %q)", c.field, err, chatrabridge.ErrorField(err))
		}
		if err != nil && strings.Contains(err.Error(), strings.Repeat("s", 20)) {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}

func TestIntegrationUpdateApply(t *testing.T) {
	i, err := chatrabridge.NewIntegration(valid())
	if err != nil {
		t.Fatal(err)
	}
	i.ID = "shop"
	u := chatrabridge.IntegrationUpdate{
		ID:      ptr("shop"), // the same id is fine
		Options: &chatrabridge.OptionsUpdate{SendAsEmployee: ptr(true)},
		Planfix: &chatrabridge.PlanfixUpdate{EmployeeUserIDs: &[]int64{}},
	}
	if err := u.Apply(i); err != nil {
		t.Fatal(err)
	}
	i.Normalize()
	if err := i.Validate(); err != nil {
		t.Fatal(err)
	}
	if !i.Options.SendAsEmployee || len(i.Planfix.EmployeeUserIDs) != 0 || i.Planfix.EmployeeUserIDs == nil ||
		i.Name != "Shop" || i.Chatra.SecretKey.Reveal() != "sk" || !slices.Equal(i.Planfix.AssigneeUserIDs, []int64{6, 5}) {
		t.Fatalf("%+v", i)
	}
	if err := (chatrabridge.IntegrationUpdate{ID: ptr("other")}).Apply(i); chatrabridge.ErrorField(err) != "id" {
		t.Fatalf("changing the id: %v", err)
	}
	// Durations read Go duration strings, and say what they want otherwise.
	var o chatrabridge.OptionsUpdate
	if err := json.Unmarshal([]byte(`{"lateReplyWindow":"1h30m"}`), &o); err != nil || time.Duration(*o.LateReplyWindow) != 90*time.Minute {
		t.Fatalf("duration: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"lateReplyWindow":"3 days"}`), &o); chatrabridge.ErrorCode(err) != chatrabridge.EINVALID {
		t.Fatalf("bad duration: %v", err)
	}
}
