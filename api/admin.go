package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/planfix"
	"github.com/chatrabridge/chatrabridge/internal/postgres"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// The admin API answers below. Secrets are write-only: an integration is answered with
// HasSecretKey and HasToken instead, and the webhook tokens appear only in the answers of
// a create and a rotation (inside the webhook URLs).

// IntegrationAnswer is an integration as the admin API shows it; Webhooks is set only in
// the answer of a create.
type IntegrationAnswer struct {
	chatrabridge.Integration
	Webhooks *WebhookURLs `json:"webhooks,omitempty"`
	// Capabilities, in GET's answer, are what the bridge has found out about the
	// integration's Planfix (a deep verify, or the first chats).
	Capabilities *Capabilities `json:"capabilities,omitempty"`
}

// WebhookURLs are the full URLs, tokens included, to configure in Chatra (Settings,
// Integrations, Webhooks) and in the Planfix scenario.
type WebhookURLs struct {
	ChatraURL  string `json:"chatraUrl"`
	PlanfixURL string `json:"planfixUrl"`
}

// IntegrationList is the answer of GET /api/v1/integrations.
type IntegrationList struct {
	Integrations []chatrabridge.Integration `json:"integrations"`
}

// RotateAnswer is the answer of POST /api/v1/integrations/{id}/rotate-tokens.
type RotateAnswer struct {
	ID       string      `json:"id"`
	Webhooks WebhookURLs `json:"webhooks"`
}

// DefaultOutboundTimeout bounds each call the admin API makes to Chatra or Planfix when
// Params.HTTPClient is nil.
const DefaultOutboundTimeout = 30 * time.Second

// admin holds what the admin API needs.
type admin struct {
	token        secrets.String
	allowPrivate bool // integrations' URLs may point at internal addresses (ALLOW_PRIVATE_URLS)
	publicURL    string
	store        *postgres.IntegrationStore
	db           conversationStore
	temporal     client.Client
	http         *http.Client
	limiter      planfix.Limiter
	logger       *slog.Logger
	// conversations answers a conversation's state.
	conversations Conversations
}

// conversationStore is what the admin API reads of the conversations' rows, and what a
// deep verify stores of the integration's Planfix.
type conversationStore interface {
	GetConversation(ctx context.Context, integrationID, chatID string) (*postgres.Conversation, error)
	ListConversations(ctx context.Context, f postgres.ConversationFilter) ([]postgres.Conversation, error)
	RecordDeepVerify(ctx context.Context, integrationID string, c postgres.Capabilities) error
	Capabilities(ctx context.Context, integrationID string) (postgres.Capabilities, error)
}

func newAdmin(p Params, conversations Conversations) *admin {
	a := &admin{
		token:        p.Config.AdminToken,
		allowPrivate: p.Config.AllowPrivateURLs,
		publicURL:    strings.TrimRight(p.Config.PublicURL, "/"),
		store:        p.Integrations,
		db:           p.DB,
		temporal:     p.Temporal,
		http:         p.HTTPClient,
		limiter:      p.PlanfixLimiter,
		logger:       p.Logger,

		conversations: conversations,
	}
	if a.publicURL == "" {
		a.publicURL = config.Default("PUBLIC_URL")
	}
	if a.http == nil {
		a.http = &http.Client{Timeout: DefaultOutboundTimeout}
	}
	if a.limiter == nil && p.DB != nil {
		a.limiter = postgres.NewRateLimiter(p.DB, 0)
	}
	return a
}

// requireAdminToken makes the app refuse to start, with a message naming the fix, when
// no admin token is configured: the admin API never runs open.
func requireAdminToken(lc fx.Lifecycle, cfg config.Config) {
	lc.Append(fx.StartHook(func() error {
		if cfg.AdminToken.Reveal() == "" {
			return errors.New("ADMIN_TOKEN is not set: the admin API refuses to run without it; set ADMIN_TOKEN or ADMIN_TOKEN_FILE (generate one with `openssl rand -base64 32`)")
		}
		return nil
	}))
}

// adminRoutes registers the admin API under /api/v1, every route behind the bearer token.
func (s *Server) adminRoutes(e *echo.Echo) {
	a := s.admin
	g := e.Group("/api/v1", a.authenticate)
	g.POST("/integrations", a.createIntegration)
	g.GET("/integrations", a.listIntegrations)
	g.GET("/integrations/:id", a.getIntegration)
	g.PATCH("/integrations/:id", a.updateIntegration)
	g.DELETE("/integrations/:id", a.deleteIntegration)
	g.POST("/integrations/:id/rotate-tokens", a.rotateTokens)
	g.POST("/integrations/:id/verify", a.verifyIntegration)
	g.GET("/integrations/:id/waiting", a.listWaiting)
	g.GET("/conversations", a.listConversations)
	// The id is chatra/<integrationId>/<chatId> (URL-escaped or not) or
	// <integrationId>/<chatId>, so it may span several path segments.
	g.GET("/conversations/*", a.getConversation)
}

// authenticate lets a request through only with "Authorization: Bearer <ADMIN_TOKEN>",
// compared in constant time. Without a configured token nothing gets through.
func (a *admin) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, presented, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		ok := strings.EqualFold(scheme, "Bearer") && a.token != ""
		// Compare even when the scheme is wrong, so that the time taken says nothing.
		if !secrets.Equal(strings.TrimSpace(presented), a.token.Reveal()) || !ok {
			a.logger.Warn("admin API: refused a request without the admin token",
				"method", c.Request().Method, "route", c.Path(), "remote", c.RealIP())
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="chatrabridge admin"`)
			return chatrabridge.Errorf(chatrabridge.EUNAUTHORIZED, "missing or wrong admin token: send the header \"Authorization: Bearer <ADMIN_TOKEN>\"")
		}
		return next(c)
	}
}

func (a *admin) webhookURLs(id string, t chatrabridge.WebhookTokens) WebhookURLs {
	build := func(kind string, token secrets.String) string {
		return a.publicURL + "/webhooks/" + kind + "/" + url.PathEscape(id) + "/" + token.Reveal()
	}
	return WebhookURLs{ChatraURL: build("chatra", t.Chatra), PlanfixURL: build("planfix", t.Planfix)}
}

// createIntegration: POST /api/v1/integrations. A left-out completedStatusId is resolved
// from Planfix before anything is stored.
func (a *admin) createIntegration(c echo.Context) error {
	var u chatrabridge.IntegrationUpdate
	if err := decodeStrict(c, &u); err != nil {
		return err
	}
	i, err := chatrabridge.NewIntegration(u)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(c.Request().Context())
	defer cancel()
	if err := a.checkURLs(ctx, u); err != nil {
		return err
	}
	if i.Planfix.CompletedStatusID == 0 {
		if i.Planfix.CompletedStatusID, err = resolveCompletedStatus(ctx, a.planfixClient(i), i.Planfix.TaskTemplateID); err != nil {
			return err
		}
	}
	tokens, err := a.store.CreateIntegration(ctx, i)
	if err != nil {
		return err
	}
	i.Chatra.SecretKey, i.Planfix.Token = "", ""
	a.logger.Info("integration created", "id", i.ID, "name", i.Name)
	urls := a.webhookURLs(i.ID, tokens)
	return c.JSON(http.StatusCreated, IntegrationAnswer{Integration: *i, Webhooks: &urls})
}

func (a *admin) listIntegrations(c echo.Context) error {
	list, err := a.store.ListIntegrations(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, IntegrationList{Integrations: list})
}

func (a *admin) getIntegration(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	i, err := a.store.IntegrationSettings(ctx, id)
	if err != nil {
		return err
	}
	caps, err := a.db.Capabilities(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, IntegrationAnswer{Integration: *i, Capabilities: capabilitiesOf(caps)})
}

// updateIntegration: PATCH /api/v1/integrations/{id}, only the given fields change.
// completedStatusId is resolved from Planfix again when it is given as 0, or when the
// task template changes and no completedStatusId is given (the new template's process
// may have other statuses).
func (a *admin) updateIntegration(c echo.Context) error {
	var u chatrabridge.IntegrationUpdate
	if err := decodeStrict(c, &u); err != nil {
		return err
	}
	ctx, cancel := withTimeout(c.Request().Context())
	defer cancel()
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := a.checkURLs(ctx, u); err != nil {
		return err
	}
	if p := u.Planfix; p != nil && ((p.CompletedStatusID != nil && *p.CompletedStatusID == 0) || (p.TaskTemplateID != nil && p.CompletedStatusID == nil)) {
		cur, err := a.store.Integration(ctx, id)
		if err != nil {
			return err
		}
		if p.CompletedStatusID != nil || *p.TaskTemplateID != cur.Planfix.TaskTemplateID {
			if err := u.Apply(cur); err != nil {
				return err
			}
			cur.Normalize()
			if err := cur.Validate(); err != nil {
				return err
			}
			status, err := resolveCompletedStatus(ctx, a.planfixClient(cur), cur.Planfix.TaskTemplateID)
			if err != nil {
				return err
			}
			p.CompletedStatusID = &status
		}
	}
	i, err := a.store.UpdateIntegration(ctx, id, u)
	if err != nil {
		return err
	}
	a.logger.Info("integration updated", "id", i.ID)
	return c.JSON(http.StatusOK, IntegrationAnswer{Integration: *i})
}

func (a *admin) deleteIntegration(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := a.store.DeleteIntegration(c.Request().Context(), id); err != nil {
		return err
	}
	a.logger.Info("integration deleted", "id", id)
	return c.NoContent(http.StatusNoContent)
}

func (a *admin) rotateTokens(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	tokens, err := a.store.RotateWebhookTokens(c.Request().Context(), id)
	if err != nil {
		return err
	}
	a.logger.Info("integration webhook tokens rotated", "id", id)
	return c.JSON(http.StatusOK, RotateAnswer{ID: id, Webhooks: a.webhookURLs(id, tokens)})
}

// pathID is the {id} of the request's path: an id the store can look up, else EINVALID
// naming "id" (a NUL or invalid UTF-8 would make the store fail rather than answer).
func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !plausibleID(id) {
		return "", chatrabridge.Invalid("id", "the id in the path is empty, longer than 256 bytes, or holds control characters or invalid UTF-8")
	}
	return id, nil
}

// checkURLs refuses the Chatra and Planfix URLs u gives when they point at internal
// addresses (checkPublicURL).
func (a *admin) checkURLs(ctx context.Context, u chatrabridge.IntegrationUpdate) error {
	if c := u.Chatra; c != nil && c.APIURL != nil {
		if err := checkPublicURL(ctx, a.allowPrivate, "chatra.apiUrl", *c.APIURL); err != nil {
			return err
		}
	}
	if p := u.Planfix; p != nil && p.AccountURL != nil {
		return checkPublicURL(ctx, a.allowPrivate, "planfix.accountUrl", *p.AccountURL)
	}
	return nil
}

// planfixClient is a client for the integration's Planfix account, sharing the
// account's rate limit with the workers.
func (a *admin) planfixClient(i *chatrabridge.Integration) *planfix.Client {
	return planfix.NewClient(planfix.Config{BaseURL: i.Planfix.RESTURL(), Token: i.Planfix.Token}, a.http, a.limiter)
}

// withTimeout bounds one admin request that calls Chatra or Planfix, the waits for
// Planfix's rate limit included.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Minute)
}
