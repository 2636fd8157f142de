#!/usr/bin/env bash
# Userland instructions per proxied request, counted by valgrind's callgrind:
# repeatable on a noisy shared machine where wall-clock throughput is not.
# Runs nginx (plain reverse proxy, 1 worker) and warden (plain reverse proxy,
# 1 worker) under callgrind in turn, each for SECONDS of `wrk -c8` load on
# loopback against the same nginx upstream, and prints instructions per
# request for each and their ratio. Stops by itself.
# Usage: bench/callgrind.sh [seconds]   (default 10; KEEP=DIR keeps the callgrind
# output files there, for callgrind_annotate)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
UP_PORT=18201 NGINX_PORT=18202 WARDEN_PORT=18203 ADMIN_PORT=18204

. bench/lib.sh
# WARDEN_BIN=path measures another build (e.g. an older commit's) instead;
# PGO=1 the profile-guided production build (bench/pgo.sh).
valgrind_tools_and_warden

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${KEEP:-}" ] && cp "$work"/*.out "$KEEP"/ 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

nginx_conf "$work/up" "server { listen 127.0.0.1:$UP_PORT; default_type application/json;
    location ~ /users4k\$ { root $PWD/bench; try_files /users-4k.json =404; }
    location / { return 200 '{\"id\":42,\"name\":\"ada\",\"roles\":[\"reader\"],\"active\":true}'; } }"
nginx_conf "$work/px" "upstream api { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" \
  "master_process off;"   # valgrind must see the worker itself
warden_conf "$work/warden.yaml" "$WARDEN_PORT" "$ADMIN_PORT" "$UP_PORT"
# LIMITS=1: also measure /rl/…, the same route behind an always-admitting
# in-memory rate_limit (as in bench/run.sh), in the same warden process.
if [ "${LIMITS:-0}" = 1 ]; then
  printf '  - id: nl\n    path: { prefix: /nl }\n    service: api\n' >> "$work/warden.yaml"
  printf '  - id: rl\n    path: { prefix: /rl }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n          - { name: daily, key: [ip], quota: { requests: 1000000000, per: day } }\n' >> "$work/warden.yaml"
  # /rl1: one rate limit only (the acceptance's "an always-admitting limit").
  printf '  - id: rl1\n    path: { prefix: /rl1 }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n' >> "$work/warden.yaml"
fi

# INJECTION=1: also measure POSTs of bench/order-1k.json to a plain route, to
# the same route behind `injection`, `contract` (strict) and both (as in
# bench/run.sh).
if [ "${INJECTION:-0}" = 1 ]; then
  injection_routes "$work/post.lua" >> "$work/warden.yaml"
fi

# RESPONSE=1: also measure GETs of bench/users-4k.json through a plain route, a
# `response_contract` route and a `response_contract` + `data_leak` route (as in
# bench/run.sh).
if [ "${RESPONSE:-0}" = 1 ]; then
  response_routes >> "$work/warden.yaml"
fi

nginx -c "$work/up/nginx.conf" -p "$work/up" & pids+=($!)

wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
wait_port "$UP_PORT"

# measure NAME PORT CMD...: runs CMD under callgrind, loads it, prints Ir/request
# (RPATH picks the path, default /users/42).
measure() {
  local name=$1 port=$2 path=${RPATH:-/users/42}; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "$@" >/dev/null 2>"$work/$name.vg" &
  local pid=$!
  wait_port "$port"
  # One request of the kind measured (WARM_BODY: POSTed as JSON) before the load.
  if [ -n "${WARM_BODY:-}" ]; then
    curl -fsS -o /dev/null -H 'Content-Type: application/json' --data-binary @"$WARM_BODY" "http://127.0.0.1:$port$path"
  else
    curl -fsS -o /dev/null "http://127.0.0.1:$port$path"
  fi
  local reqs
  if [ "$DUR" = 0 ]; then reqs=0; else
    reqs=$(wrk -t1 -c8 -d"${DUR}s" ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local ir
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$name.out")
  # A warden row's one-off work, the warm-up request included, is measured on
  # its own and subtracted (measure_warden): only the load's requests are left.
  # nginx's startup and warm-up stay in (they are small): one request more.
  local per=$((reqs + 1))
  case $name in warden*) ir=$((ir - ${STARTUP_IR:-0})); if [ "$reqs" -gt 0 ]; then per=$reqs; fi ;; esac
  echo "$name $reqs $ir $per" | awk '{ printf "%-8s %9d requests  %14d instructions  %7.0f per request\n", $1, $2, $3, $3 / $4 }'
  echo "$name $reqs $ir $per" >> "$work/results"
}

measure nginx "$NGINX_PORT" nginx -c "$work/px/nginx.conf" -p "$work/px"
# measure_warden NAME: a warden row. Its one-off work is measured on its own
# (startup, config compilation, and what the route's first request builds
# lazily: regex caches, automata) and subtracted, so only the load is counted
# (a config with many compiled policies costs millions of instructions once,
# which short runs would otherwise spread over requests). RPATH, WRK_SCRIPT and
# WARM_BODY as for measure.
measure_warden() {
  local name=$1 once
  DUR=0 STARTUP_IR=0 WARDEN_LOG=warn measure "$name-once" "$WARDEN_PORT" "$WARDEN" run --watch-secs 0 --config "$work/warden.yaml" --workers 1 >/dev/null
  once=$(awk -v n="$name-once" '$1 == n {print $3}' "$work/results")
  STARTUP_IR=$once WARDEN_LOG=warn measure "$name" "$WARDEN_PORT" "$WARDEN" run --watch-secs 0 --config "$work/warden.yaml" --workers 1
}
measure_warden warden
if [ "${LIMITS:-0}" = 1 ]; then
  RPATH=/nl/users/42 measure_warden warden-nl
  RPATH=/rl/users/42 measure_warden warden-rl
  RPATH=/rl1/users/42 measure_warden warden-rl1
fi
if [ "${INJECTION:-0}" = 1 ]; then
  for route in post inj ct ci; do
    RPATH=/$route/orders WRK_SCRIPT=$work/post.lua WARM_BODY=bench/order-1k.json measure_warden "warden-$route"
  done
fi
if [ "${RESPONSE:-0}" = 1 ]; then
  for route in plain filter resp; do
    RPATH=/$route/users4k measure_warden "warden-$route"
  done
fi
awk '{ per[$1] = $3 / $4 } END { printf "warden/nginx instructions per request: %.2f\n", per["warden"] / per["nginx"]
  if (per["warden-rl"]) printf "warden-rl/warden-nl (same route shape without the limit): %.3f; one rate limit only (rl1): %.3f\n", per["warden-rl"] / per["warden-nl"], per["warden-rl1"] / per["warden-nl"]
  if (per["warden-inj"]) printf "warden-inj/warden-post (1 KiB JSON): %.2f\n", per["warden-inj"] / per["warden-post"]
  if (per["warden-ci"]) printf "warden-ct/warden-post, warden-ci/warden-post (contract, contract + injection): %.2f, %.2f\n", per["warden-ct"] / per["warden-post"], per["warden-ci"] / per["warden-post"]
  if (per["warden-filter"]) printf "warden-filter/warden-plain, warden-resp/warden-plain (4 KiB JSON): %.2f, %.2f\n", per["warden-filter"] / per["warden-plain"], per["warden-resp"] / per["warden-plain"] }' "$work/results"
