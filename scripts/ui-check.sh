#!/usr/bin/env bash
# make ui-check: run `chatrabridge demo`, then check in headless Chromium that the Temporal
# Web UI lists the demo's conversation when filtered by the customer's email (with its
# search attributes as columns), that its page shows its summary and current details, and
# that its history shows the customer's message, which Temporal holds encrypted, in clear:
# decoded through the bridge's codec server (and, as a control, not without it).
# Screenshots: .chatrabridge/ui-check.png (the list), .chatrabridge/ui-check-conversation.png,
# .chatrabridge/ui-check-history.png (the decoded message).
#
# Uses the running `make dev` when there is one (data dir UI_CHECK_DATA_DIR, default
# .chatrabridge); otherwise starts dev in the background as demo-check.sh does, and stops
# it afterwards. Installs Debian's chromium with apt when it is missing (as root), and
# playwright-core (ui-check/package-lock.json) with npm when ui-check/node_modules is.
# Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVSTACK_NAME=ui-check
# shellcheck source=scripts/devstack.sh
source scripts/devstack.sh

GO=${GO:-go}
data_dir=${UI_CHECK_DATA_DIR:-.chatrabridge}
db_url=${DEMO_CHECK_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatrabridge_demo_check?sslmode=disable}
chromium=${CHROMIUM:-/usr/bin/chromium}
shots=.chatrabridge
mkdir -p "$shots"

command -v node >/dev/null 2>&1 || { echo "ui-check: needs Node.js 18 or newer (apt-get install nodejs npm)" >&2; exit 1; }
if [[ ! -x $chromium ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "ui-check: installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    echo "ui-check: $chromium is missing: install Debian's chromium (sudo apt-get install chromium) or set CHROMIUM" >&2
    exit 1
  fi
fi
if [[ ! -d ui-check/node_modules/playwright-core ]]; then
  echo "ui-check: installing playwright-core (npm ci in ui-check/)"
  (cd ui-check && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "ui-check: building bin/chatrabridge"
"$GO" build -o bin/chatrabridge ./cmd/chatrabridge

work=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  devstack_stop || true
  [[ -z $work ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if devstack_ready && [[ -f $data_dir/demo-webhooks.json ]]; then
  echo "ui-check: using the running chatrabridge dev (data dir $data_dir)"
else
  devstack_check_ports
  work=$(mktemp -d "${TMPDIR:-/tmp}/chatrabridge-ui-check.XXXXXX")
  data_dir=$work/data
  devstack_scratch_db "$db_url"
  devstack_start bin/chatrabridge "$data_dir" "$work/dev.log" "$db_url"
  devstack_wait_ready "$work/dev.log" 180
fi

bin/chatrabridge demo --data-dir "$data_dir" --timeout "${DEMO_TIMEOUT:-3m}"
node ui-check/ui-check.mjs --result "$data_dir/demo-last.json" --screenshot "$shots/ui-check.png" --chromium "$chromium"
