#!/usr/bin/env bash
# make demo-check: build the binary, start `chatrabridge dev` in the background on a
# temporary data directory and a scratch database, wait until it is ready, run
# `chatrabridge demo`, stop dev with SIGINT, and exit with the demo's code (0 only if the
# task was created, got the comments, the reply reached the sandbox Chatra, and the task
# was completed).
#
# Needs dev's default ports free (7233, 8233, 8080, 8090) and PostgreSQL as `make test`
# does. DEMO_CHECK_DATABASE_URL names the scratch database (dropped first when psql is
# installed); DEMO_TIMEOUT bounds the demo (default 3m).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVSTACK_NAME=demo-check
# shellcheck source=scripts/devstack.sh
source scripts/devstack.sh

GO=${GO:-go}
db_url=${DEMO_CHECK_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatrabridge_demo_check?sslmode=disable}
timeout=${DEMO_TIMEOUT:-3m}

devstack_check_ports
echo "demo-check: building bin/chatrabridge"
"$GO" build -o bin/chatrabridge ./cmd/chatrabridge

work=$(mktemp -d "${TMPDIR:-/tmp}/chatrabridge-demo-check.XXXXXX")
keep_work=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  devstack_stop || true
  if [[ $keep_work == 1 ]]; then
    echo "demo-check: kept $work (dev's log: $work/dev.log)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

devstack_scratch_db "$db_url"
devstack_start bin/chatrabridge "$work/data" "$work/dev.log" "$db_url"
if ! devstack_wait_ready "$work/dev.log" 180; then
  keep_work=1
  exit 1
fi

code=0
bin/chatrabridge demo --data-dir "$work/data" --timeout "$timeout" || code=$?

stop_code=0
devstack_stop || stop_code=$?
if [[ $stop_code != 0 ]]; then
  echo "demo-check: warning: chatrabridge dev exited with code $stop_code on SIGINT; the end of its log:" >&2
  tail -n 20 "$work/dev.log" >&2
fi
if [[ $code != 0 ]]; then
  keep_work=1
  echo "demo-check: FAILED (demo exited $code); the end of dev's log:" >&2
  tail -n 30 "$work/dev.log" >&2
else
  echo "demo-check: passed"
fi
exit "$code"
