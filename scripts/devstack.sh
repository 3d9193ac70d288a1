# shellcheck shell=bash
# Sourced by demo-check.sh and ui-check.sh: start `chatrabridge dev` in the background on
# its default ports (Temporal 7233, Web UI 8233, API 8080, sandbox 8090), wait until it is
# ready, and stop it with SIGINT, as Ctrl-C would.

DEVSTACK_PORTS=("7233:Temporal" "8233:the Temporal Web UI" "8080:the HTTP API" "8090:the sandbox")
DEVSTACK_PID=""

# devstack_port_taken PORT: true when something accepts connections on 127.0.0.1:PORT.
devstack_port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# devstack_check_ports: fail, naming the port, when one of dev's ports is taken.
devstack_check_ports() {
  local entry port what taken=0
  for entry in "${DEVSTACK_PORTS[@]}"; do
    port=${entry%%:*} what=${entry#*:}
    if devstack_port_taken "$port"; then
      echo "$DEVSTACK_NAME: port $port ($what) is taken: stop whatever listens there (a running \`make dev\` or \`temporal server start-dev\`?) and run again" >&2
      taken=1
    fi
  done
  return "$taken"
}

# devstack_start BIN DATA_DIR LOG DATABASE_URL: start dev in the background.
devstack_start() {
  local bin=$1 data_dir=$2 log=$3 db_url=$4
  echo "$DEVSTACK_NAME: starting chatrabridge dev (data dir $data_dir, database ${db_url%%\?*}, log $log)"
  DATABASE_URL=$db_url HTTP_ADDR=:8080 PUBLIC_URL=http://127.0.0.1:8080 LOG_LEVEL=${LOG_LEVEL:-warn} \
    "$bin" dev --data-dir "$data_dir" >"$log" 2>&1 &
  DEVSTACK_PID=$!
}

# devstack_ready: true when GET http://127.0.0.1:8080/readyz answers 200 (bash only: no
# curl on a bare CI machine).
devstack_ready() {
  (
    exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
    printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n\r\n' >&3
    IFS= read -r -t 5 status <&3 || exit 1
    [[ $status == "HTTP/1."?" 200 "* ]]
  ) 2>/dev/null
}

# devstack_wait_ready LOG SECONDS: wait until /readyz answers 200; fail, showing the log,
# when dev exits or the time runs out.
devstack_wait_ready() {
  local log=$1 limit=$2 i
  for ((i = 0; i < limit; i++)); do
    if ! kill -0 "$DEVSTACK_PID" 2>/dev/null; then
      echo "$DEVSTACK_NAME: chatrabridge dev exited before it was ready; its log:" >&2
      tail -n 40 "$log" >&2
      DEVSTACK_PID=""
      return 1
    fi
    if devstack_ready; then
      echo "$DEVSTACK_NAME: dev is ready after ${i}s"
      return 0
    fi
    sleep 1
  done
  echo "$DEVSTACK_NAME: chatrabridge dev was not ready after ${limit}s; its log:" >&2
  tail -n 40 "$log" >&2
  return 1
}

# devstack_stop: SIGINT, then wait up to 60 s (SIGKILL after that). Returns dev's exit
# code (130 if it had to be killed).
devstack_stop() {
  [[ -n $DEVSTACK_PID ]] || return 0
  local pid=$DEVSTACK_PID i code=0
  DEVSTACK_PID=""
  kill -INT "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$DEVSTACK_NAME: chatrabridge dev did not stop 60s after SIGINT; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 130
  fi
  wait "$pid" 2>/dev/null || code=$?
  return "$code"
}

# devstack_scratch_db URL: drop the database URL names (psql, if installed), so that dev
# creates it afresh. The URL must end in the database name (and optional ?params).
devstack_scratch_db() {
  local url=$1 name admin
  command -v psql >/dev/null 2>&1 || return 0
  name=${url%%\?*} name=${name##*/}
  admin=${url/\/$name/\/postgres}
  psql "$admin" -qX -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 ||
    echo "$DEVSTACK_NAME: could not drop database $name (continuing: dev resets the demo integration)" >&2
}
