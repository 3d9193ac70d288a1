package devserver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	sqlschema "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// postgresStores returns the stores of a server on PostgreSQL: the database that rawURL
// names for workflows and a second one, its name with "_visibility" appended, for
// visibility. Each is created when missing and its schema brought to the version this
// server needs, as Temporal's schema tool does (setup at version 0.0, then every
// versioned update above the database's version).
func postgresStores(ctx context.Context, rawURL string) (store, visibility *config.SQL, err error) {
	visURL, err := withDatabaseSuffix(rawURL, "_visibility")
	if err != nil {
		return nil, nil, err
	}
	for _, s := range []struct {
		url, schema string
		conf        **config.SQL
	}{
		{rawURL, "postgresql/v12/temporal", &store},
		{visURL, "postgresql/v12/visibility", &visibility},
	} {
		if err := postgres.EnsureDatabase(ctx, s.url); err != nil {
			return nil, nil, err
		}
		if *s.conf, err = postgresConfig(s.url); err != nil {
			return nil, nil, err
		}
		if err := migrateSchema(*s.conf, s.schema); err != nil {
			return nil, nil, fmt.Errorf("temporal schema in database %s: %w", (*s.conf).DatabaseName, err)
		}
	}
	return store, visibility, nil
}

// migrateSchema sets up or updates the schema (one of Temporal's embedded schema
// directories) in the database of conf.
func migrateSchema(conf *config.SQL, schema string) error {
	conn, err := sqltool.NewConnection(conf, log.NewNoopLogger())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := sqlschema.NewSetupSchemaTask(conn, &sqlschema.SetupConfig{InitialVersion: "0.0"}, log.NewNoopLogger()).Run(); err != nil {
		return err
	}
	return sqlschema.NewUpdateSchemaTask(conn, &sqlschema.UpdateConfig{DBName: conf.DatabaseName, SchemaName: schema}, log.NewNoopLogger()).Run()
}

// postgresConfig is the server's SQL configuration for the database of rawURL: its
// host (or unix socket directory), user, password and database, and its query
// parameters (sslmode, ...) as connection attributes.
func postgresConfig(rawURL string) (*config.SQL, error) {
	pc, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("temporal's PostgreSQL URL: %w", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("temporal's PostgreSQL URL: %w", err)
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		attrs[k] = v[len(v)-1]
	}
	conf := &config.SQL{
		PluginName:        pgplugin.PluginNamePGX,
		User:              pc.User,
		Password:          pc.Password,
		DatabaseName:      pc.Database,
		ConnectAttributes: attrs,
		MaxConns:          postgresConns,
		MaxIdleConns:      postgresConns,
	}
	if strings.HasPrefix(pc.Host, "/") { // a unix socket: its directory and port go as parameters
		attrs["host"], attrs["port"] = pc.Host, strconv.Itoa(int(pc.Port))
	} else {
		delete(attrs, "host")
		delete(attrs, "port")
		conf.ConnectAddr = net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port)))
	}
	return conf, nil
}

// postgresConns is the connections of each of the server's stores to PostgreSQL.
const postgresConns = 10

// withDatabaseSuffix is rawURL with suffix appended to its database's name.
func withDatabaseSuffix(rawURL, suffix string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("temporal's PostgreSQL URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", fmt.Errorf("temporal's PostgreSQL URL names no database")
	}
	u.Path = "/" + name + suffix
	return u.String(), nil
}
