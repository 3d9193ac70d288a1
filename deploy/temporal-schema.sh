#!/bin/sh
# Creates Temporal's two databases on the compose PostgreSQL and brings their schemas up to
# the version the admin-tools image ships. Safe to run again: existing databases are kept
# and only missing schema versions are applied.
set -eu
tool() { temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@"; }
for db in temporal temporal_visibility; do
  kind=temporal
  [ "$db" = temporal_visibility ] && kind=visibility
  tool --db "$db" create || true
  tool --db "$db" setup-schema -v 0.0 || true
  tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$kind/versioned"
done
echo "temporal schemas are up to date"
