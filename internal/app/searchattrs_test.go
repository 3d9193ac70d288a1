package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"google.golang.org/grpc"

	"github.com/chatrabridge/chatrabridge/api"
	"github.com/chatrabridge/chatrabridge/internal/app"
	"github.com/chatrabridge/chatrabridge/internal/config"
	"github.com/chatrabridge/chatrabridge/internal/devserver"
	"github.com/chatrabridge/chatrabridge/internal/postgres/postgrestest"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
	"github.com/chatrabridge/chatrabridge/internal/temporalclient"
	"github.com/chatrabridge/chatrabridge/workflows"
)

// bareTemporal is a Temporal server whose namespace has none of the custom search
// attributes, as a new cluster, `temporal server start-dev` or a new Temporal Cloud
// namespace.
func bareTemporal(t *testing.T) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func apiConfig(t *testing.T) config.Config {
	t.Helper()
	_, dbURL := postgrestest.New(t)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.HTTPAddr, cfg.TaskQueue = secrets.String(dbURL), "127.0.0.1:0", "searchattrs-test"
	cfg.AdminToken, cfg.SecretsKey = "test-admin-token", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	return cfg
}

// refusingOperator is the operator service of a server that does not let a client
// add search attributes (Temporal Cloud; a cluster with an authorizer).
type refusingOperator struct {
	operatorservice.OperatorServiceClient
}

func (refusingOperator) AddSearchAttributes(context.Context, *operatorservice.AddSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	return nil, serviceerror.NewPermissionDenied("request unauthorized", "")
}

type refusingClient struct{ client.Client }

func (c refusingClient) OperatorService() operatorservice.OperatorServiceClient {
	return refusingOperator{c.Client.OperatorService()}
}

// `serve` (the API and the worker of Production's graph) against a server without the
// search attributes registers them at start, and is ready.
func TestServeRegistersMissingSearchAttributes(t *testing.T) {
	srv := bareTemporal(t)
	var s *api.Server
	a := fxtest.New(t,
		app.Base(apiConfig(t), slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()}),
		app.SearchAttributesCheck,
		app.Roles(app.Role{API: true, Worker: true}),
		fx.Populate(&s),
	)
	a.RequireStart()
	defer a.RequireStop()

	c, err := client.Dial(client.Options{HostPort: srv.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	have, err := c.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes() {
		if got := have.GetCustomAttributes()[name]; got != typ {
			t.Errorf("%s: %v after start, want %v", name, got, typ)
		}
	}
	if code, body := httpGet(t, "http://"+s.Addr().String()+"/readyz"); code != 200 {
		t.Fatalf("readyz = %d %s", code, body)
	}
}

// Where the server refuses to add them, the start fails with one line that names every
// missing attribute and the commands that create them.
func TestServeFailsWhenSearchAttributesCannotBeAdded(t *testing.T) {
	srv := bareTemporal(t)
	a := fx.New(
		app.Base(apiConfig(t), slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()}),
		app.SearchAttributesCheck,
		fx.Decorate(func(_ *temporalclient.SearchAttributes, c client.Client) *temporalclient.SearchAttributes {
			return temporalclient.NewSearchAttributes(refusingClient{c}, "default", workflows.SearchAttributes())
		}),
		app.Roles(app.Role{API: true, Worker: true}),
		fx.NopLogger,
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := a.Start(ctx)
	if err == nil {
		_ = a.Stop(context.Background())
		t.Fatal("started against a namespace without the search attributes")
	}
	msg := err.Error()
	t.Logf("start failed: %s", msg)
	if strings.Contains(msg, "\n") || !temporalclient.IsMissing(err) {
		t.Errorf("want one line and a *MissingError, got %q", msg)
	}
	for name := range workflows.SearchAttributes() {
		if !strings.Contains(msg, name) {
			t.Errorf("%s is not named", name)
		}
	}
	for _, want := range []string{
		"temporal operator search-attribute create --namespace default --name ChatraChatId --type Keyword --name ChatraClientId --type Keyword",
		"--name CustomerWaitingSince --type Datetime", "--name PlanfixTaskId --type Int",
		"tcld namespace search-attributes add --namespace default.<account id> --search-attribute ChatraChatId=Keyword",
		"the server did not let this process add them (request unauthorized)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q", want)
		}
	}
}

// /readyz of an API whose namespace lacks them is 503 and names them.
func TestReadyzNamesMissingSearchAttributes(t *testing.T) {
	srv := bareTemporal(t)
	var s *api.Server
	a := fxtest.New(t,
		app.Base(apiConfig(t), slog.New(slog.DiscardHandler), true),
		app.TemporalOptions(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace()}),
		fx.Provide(func(c client.Client) *temporalclient.SearchAttributes {
			return temporalclient.NewSearchAttributes(c, "default", workflows.SearchAttributes())
		}),
		app.Roles(app.Role{API: true}),
		fx.Populate(&s),
	)
	a.RequireStart()
	defer a.RequireStop()
	code, body := httpGet(t, "http://"+s.Addr().String()+"/readyz")
	if code != 503 || !strings.Contains(body, "ChatraIntegration") || !strings.Contains(body, "temporal operator search-attribute create") {
		t.Fatalf("readyz = %d %s; want 503 naming the attributes and the command", code, body)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
