#!/usr/bin/env bash
# Cache and branch behaviour per request, from callgrind's simulation
# (--cache-sim=yes --branch-sim=yes): instructions, first-level instruction
# and data cache misses, mispredicted branches, for one route of a warden
# (1 worker) in front of a small nginx upstream, under SECONDS of `wrk -c8`.
# Counting starts after three warm-up requests (callgrind_control -z).
# Note: the window also holds per-time work (the event loop, timers), which
# valgrind's slowness makes larger than in a real run; compare routes with
# runs of equal length. Stops by itself.
# Usage: bench/cachesim.sh ROUTE [seconds]   ROUTE: plain (/), nl (/nl, a prefix
# route), rl1 (/rl1, the same behind one always-admitting in-memory rate limit).
# WARDEN_BIN=path measures another build; KEEP=DIR keeps the callgrind file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTE=${1:?usage: bench/cachesim.sh plain|nl|rl1 [seconds]}
DUR=${2:-8}
UP_PORT=18401 WARDEN_PORT=18403 ADMIN_PORT=18404
case $ROUTE in plain) RPATH=/users/42 ;; nl|rl1) RPATH=/$ROUTE/users/42 ;; *) echo "unknown route $ROUTE" >&2; exit 2 ;; esac

. bench/lib.sh
valgrind_tools_and_warden

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${KEEP:-}" ] && cp "$work"/cg.out.1 "$KEEP/$ROUTE.out" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

nginx_conf "$work/up" "server { listen 127.0.0.1:$UP_PORT; default_type application/json;
    location / { return 200 '{\"id\":42,\"name\":\"ada\",\"roles\":[\"reader\"],\"active\":true}'; } }"
warden_conf "$work/w.yaml" "$WARDEN_PORT" "$ADMIN_PORT" "$UP_PORT"
printf '  - id: nl\n    path: { prefix: /nl }\n    service: api\n  - id: rl1\n    path: { prefix: /rl1 }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n' >> "$work/w.yaml"
nginx -c "$work/up/nginx.conf" & pids+=($!)
WARDEN_LOG=warn valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --callgrind-out-file="$work/cg.out" \
  "$WARDEN" run --watch-secs 0 --config "$work/w.yaml" --workers 1 2>"$work/vg" & vp=$!; pids+=($vp)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$WARDEN_PORT") 2>/dev/null && break; sleep 0.2; done
for _ in 1 2 3; do curl -fsS -o /dev/null "http://127.0.0.1:$WARDEN_PORT$RPATH"; done
callgrind_control -z "$vp" >/dev/null 2>&1
n=$(wrk -t1 -c8 -d"${DUR}s" "http://127.0.0.1:$WARDEN_PORT$RPATH" | awk '/requests in/ {print $1}')
callgrind_control -d "$vp" >/dev/null 2>&1
kill -TERM "$vp"; wait "$vp" 2>/dev/null || true
callgrind_annotate "$work/cg.out.1" 2>/dev/null | grep "PROGRAM TOTALS" | sed 's/([^)]*)//g' | tr -d ',' |
  awk -v n="$n" -v r="$ROUTE" '{ printf "%s, %d requests, per request: instructions %.0f, I1 misses %.1f, D1 read misses %.1f, D1 write misses %.1f, branches mispredicted %.1f conditional + %.1f indirect\n", r, n, $1/n, $4/n, $5/n, $6/n, $11/n, $13/n }'
