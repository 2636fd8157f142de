#!/usr/bin/env bash
# Side-by-side plain reverse-proxy benchmark on loopback:
#   upstream direct  vs  nginx (proxy_pass)  vs  warden
# Same machine, same run, same CPU pinning: the upstream and wrk share core 0,
# the proxy under test (nginx: 1 worker; warden: 1 runtime thread) gets core 1.
# Small JSON, HTTP/1.1 keep-alive both sides, access logs off on both proxies.
# Stops by itself. Usage: bench/run.sh [seconds-per-run] [connections] [rounds]
# PGO=1 bench/run.sh ...: measures the profile-guided build (bench/pgo.sh)
# instead of `cargo build --release`; WARDEN_BIN=path measures any build.
# TLS=1 bench/run.sh ...: both proxies terminate TLS 1.3 (same ECDSA P-256
# certificate, keep-alive), then a second table measures new handshakes per
# second (`Connection: close`: one TCP connection and full handshake per request).
# JWT=1 bench/run.sh ...: warden also serves the same upstream behind a `jwt`
# policy (RS256 and ES256 tokens, one verification per request); the rows
# warden-rs256 / warden-es256 run in the same process as the plain warden row.
# AUTHZ=1 bench/run.sh ...: two more warden rows, same process: warden-authn (an
# ES256 `jwt` policy only) and warden-authz (the same plus `authz`: one BOLA binding
# and a Cedar policy set, decision cache on), and their ratio.
# LIMITS=1 bench/run.sh ...: warden-rl-mem (same process as the plain warden row,
# a `rate_limit` that always admits: 10^9 per second and 10^9 per day by client
# address, in memory) and warden-rl-redis (a second warden process on the same
# core, the same policy with its counters in Redis at $REDIS_URL, default
# redis://127.0.0.1:6379/15), and their ratios to the plain row.
# INJECTION=1 bench/run.sh ...: four more rows in the same warden process, all
# POSTing bench/order-1k.json (1,085 bytes of realistic order JSON): warden-post
# (a route without policies: the body streams through), warden-inj (the same
# behind `injection` at its defaults: the body is buffered, parsed and every
# string scanned), warden-ct (`contract`, strict, against bench/order-1k.yaml)
# and warden-ci (`contract` then `injection`), and their ratios to warden-post.
# RESPONSE=1 bench/run.sh ...: three more rows in the same warden process, all
# GETting bench/users-4k.json (4,082 bytes: ten user rows, two undeclared
# properties each) from the upstream: warden-get4k (a route without policies),
# warden-filter (`response_contract` filtering to bench/users-4k.yaml) and
# warden-resp (the same plus `data_leak` at its defaults), and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONNS=${2:-64}
ROUNDS=${3:-3}
UP_PORT=18101 NGINX_PORT=18102 WARDEN_PORT=18103 ADMIN_PORT=18104
CORE_LOAD=${CORE_LOAD:-0}
CORE_PROXY=${CORE_PROXY:-1}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
NGINX=$(command -v nginx)
. bench/lib.sh
# WARDEN_BIN=path measures another build (e.g. an older commit's) instead;
# PGO=1 the profile-guided production build (bench/pgo.sh).
warden_build

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT

nginx_conf "$work/up" "server { listen 127.0.0.1:$UP_PORT; default_type application/json;
    location ~ /users4k\$ { root $PWD/bench; try_files /users-4k.json =404; }
    location / { return 200 '{\"id\":42,\"name\":\"ada\",\"roles\":[\"reader\"],\"active\":true}'; } }"
TLS=${TLS:-0}
SCHEME=http NGINX_LISTEN="" WARDEN_LISTENER="plain_http: serve"
if [ "$TLS" = 1 ]; then
  SCHEME=https
  bench_cert "$work"
  NGINX_LISTEN="ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3"
  WARDEN_LISTENER="tls: { certificates: [{ cert: \"$work/cert.pem\", key: \"$work/key.pem\" }], alpn: [http/1.1] }"
fi
nginx_conf "$work/px" "upstream api { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server { listen 127.0.0.1:$NGINX_PORT $NGINX_LISTEN;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
warden_conf "$work/warden.yaml" "$WARDEN_PORT" "$ADMIN_PORT" "$UP_PORT" "$WARDEN_LISTENER"
LIMITS=${LIMITS:-0}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}
rl_route() { # id prefix [extra policy line]
  printf '  - id: %s\n    path: { prefix: %s }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n          - { name: daily, key: [ip], quota: { requests: 1000000000, per: day } }\n' "$1" "$2"
  [ -z "${3:-}" ] || printf '        %s\n' "$3"
}
rl1_route() { # id prefix: one rate limit only (the acceptance's "an always-admitting limit")
  printf '  - id: %s\n    path: { prefix: %s }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n' "$1" "$2"
}
if [ "$LIMITS" = 1 ]; then
  # The same config on other ports, with Redis (top-level keys may come in any order;
  # the route must land in `routes:`, the file's last section).
  { printf 'shared_state: { redis_url: "%s", key_prefix: "warden-bench:" }\n' "$REDIS_URL"
    sed -e "s/$WARDEN_PORT/$((WARDEN_PORT + 10))/; s/$ADMIN_PORT/$((ADMIN_PORT + 10))/" "$work/warden.yaml"
    rl_route rl /rl; } > "$work/warden-redis.yaml"
  # In memory, with and without the RateLimit headers (what the headers cost).
  # /nl is the baseline: the same route shape (a prefix route, a path as
  # long) without the policy, so routing costs the same on both sides.
  { printf '  - id: nl\n    path: { prefix: /nl }\n    service: api\n'
    rl_route rl /rl; rl_route rl-nohdr /rl-nohdr "headers: false"; rl1_route rl1 /rl1; } >> "$work/warden.yaml"
fi
INJECTION=${INJECTION:-0}
if [ "$INJECTION" = 1 ]; then
  injection_routes "$work/post.lua" >> "$work/warden.yaml"
fi
RESPONSE=${RESPONSE:-0}
if [ "$RESPONSE" = 1 ]; then
  response_routes >> "$work/warden.yaml"
fi
JWT=${JWT:-0}
AUTHZ=${AUTHZ:-0}
if [ "$JWT" = 1 ] || [ "$AUTHZ" = 1 ]; then
  jwt_tokens "$work/jwt"
  RS_TOKEN=$(cat "$work/jwt/rs256.jwt"); ES_TOKEN=$(cat "$work/jwt/es256.jwt")
fi
JWT_POLICY=$(jwt_policy "$work/jwt")
if [ "$AUTHZ" = 1 ]; then
  cat >> "$work/warden.yaml" <<CONF
  - id: authn
    path: { template: "/authn/users/{user_id}" }
    service: api
    policies:
$JWT_POLICY
  - id: authz
    path: { template: "/authz/users/{user_id}" }
    service: api
    policies:
$JWT_POLICY
      - type: authz
        bind: [{ path_param: user_id, equals_consumer: true }]
        policies: |
          @id("read-own") permit(principal, action == Action::"GET /authz/users/{user_id}", resource)
            when { context.authentication == "jwt" };
          @id("admins") permit(principal in Group::"admin", action, resource);
          @id("quarantine") forbid(principal, action, resource) when { context.ip.isInRange(ip("10.99.0.0/16")) };
CONF
fi
if [ "$JWT" = 1 ]; then
  cat >> "$work/warden.yaml" <<CONF
  - id: jwt
    path: { prefix: /jwt }
    service: api
    policies:
$JWT_POLICY
CONF
fi

taskset -c "$CORE_LOAD" "$NGINX" -c "$work/up/nginx.conf" & pids+=($!); UP_PID=$!
taskset -c "$CORE_PROXY" "$NGINX" -c "$work/px/nginx.conf" & pids+=($!); NGINX_PID=$!
WARDEN_LOG=warn taskset -c "$CORE_PROXY" "$WARDEN" run --watch-secs 0 --config "$work/warden.yaml" 2>"$work/warden.err" & pids+=($!); WARDEN_PID=$!
if [ "$LIMITS" = 1 ]; then
  WARDEN_LOG=warn taskset -c "$CORE_PROXY" "$WARDEN" run --watch-secs 0 --config "$work/warden-redis.yaml" 2>"$work/warden-redis.err" & pids+=($!); REDIS_WARDEN_PID=$!
  for _ in $(seq 100); do curl -kfs "$SCHEME://127.0.0.1:$((WARDEN_PORT + 10))/rl/" >/dev/null 2>&1 && break; sleep 0.1; done
fi
for port in $UP_PORT; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
done
for port in $NGINX_PORT $WARDEN_PORT; do
  for _ in $(seq 100); do curl -kfs "$SCHEME://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
done

# wrk prints latency as e.g. 812.00us / 1.20ms / 1.01s: normalise to microseconds.
to_us() { awk '{ v=$1; if (v ~ /us$/) { sub(/us/,"",v); print v } else if (v ~ /ms$/) { sub(/ms/,"",v); print v*1000 } else if (v ~ /s$/) { sub(/s/,"",v); print v*1000000 } }'; }
# CPU ticks (user+system, all threads) of a process and its children (nginx workers).
ticks() { local t=0 p; for p in $1 $(pgrep -P "$1"); do t=$((t + $(awk '{s=0} {s+=$14+$15} END {print s}' /proc/"$p"/task/*/stat))); done; echo $t; }
# Of which in the kernel (system time).
sys_ticks() { local t=0 p; for p in $1 $(pgrep -P "$1"); do t=$((t + $(awk '{s=0} {s+=$15} END {print s}' /proc/"$p"/task/*/stat))); done; echo $t; }
run() { # name port pid [scheme] [wrk args...]
  local name=$1 port=$2 pid=$3 scheme=${4:-http}; shift 3; [ $# -gt 0 ] && shift
  local c0 s0; c0=$(ticks "$pid"); s0=$(sys_ticks "$pid")
  local out; out=$(taskset -c "$CORE_LOAD" wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$@" "$scheme://127.0.0.1:$port${RPATH:-/users/42}")
  local c1 s1; c1=$(ticks "$pid"); s1=$(sys_ticks "$pid")
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_us)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_us)
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  local hz; hz=$(getconf CLK_TCK)
  local cpu; cpu=$(awk -v t=$((c1 - c0)) -v r="$rps" -v d="$DUR" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1000000 / hz / (r * d) }')
  local sys; sys=$(awk -v t=$((s1 - s0)) -v r="$rps" -v d="$DUR" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1000000 / hz / (r * d) }')
  echo "$name $rps $p50 $p99 $cpu" >> "$work/results"
  printf '  %-9s %10.0f req/s   p50 %8.0f us   p99 %8.0f us   cpu %5.1f us/req (kernel %4.1f)  %s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$sys" "$errs"
}

echo "warden bench: ${DUR}s x $ROUNDS rounds, $CONNS connections, wrk+upstream on core $CORE_LOAD, proxy on core $CORE_PROXY"
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  run upstream $UP_PORT "$UP_PID"
  run nginx $NGINX_PORT "$NGINX_PID" $SCHEME
  run warden $WARDEN_PORT "$WARDEN_PID" $SCHEME
  if [ "$JWT" = 1 ]; then
    RPATH=/jwt/users/42 run warden-rs256 $WARDEN_PORT "$WARDEN_PID" $SCHEME -H "Authorization: Bearer $RS_TOKEN"
    RPATH=/jwt/users/42 run warden-es256 $WARDEN_PORT "$WARDEN_PID" $SCHEME -H "Authorization: Bearer $ES_TOKEN"
  fi
  if [ "$AUTHZ" = 1 ]; then
    RPATH=/authn/users/alice run warden-authn $WARDEN_PORT "$WARDEN_PID" $SCHEME -H "Authorization: Bearer $ES_TOKEN"
    RPATH=/authz/users/alice run warden-authz $WARDEN_PORT "$WARDEN_PID" $SCHEME -H "Authorization: Bearer $ES_TOKEN"
  fi
  if [ "$LIMITS" = 1 ]; then
    # A-B-B-A against the plain row: this VM's throughput drifts within a
    # round, so each side gets one early and one late sample.
    # /rl1 (one limit: the acceptance's literal row) is paired the same way.
    RPATH=/nl/users/42 run warden-nl $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/rl/users/42 run warden-rl-mem $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/rl1/users/42 run warden-rl1 $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/rl-nohdr/users/42 run warden-rl-nohdr $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/rl/users/42 run warden-rl-redis $((WARDEN_PORT + 10)) "$REDIS_WARDEN_PID" $SCHEME
    RPATH=/rl1/users/42 run warden-rl1 $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/rl/users/42 run warden-rl-mem $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/nl/users/42 run warden-nl $WARDEN_PORT "$WARDEN_PID" $SCHEME
  fi
  if [ "$INJECTION" = 1 ]; then
    # A-B-C-D-D-C-B-A, as for LIMITS.
    for row in post inj ct ci ci ct inj post; do
      RPATH=/$row/orders run warden-$row $WARDEN_PORT "$WARDEN_PID" $SCHEME -s "$work/post.lua"
    done
  fi
  if [ "$RESPONSE" = 1 ]; then
    # A-B-B-A around the two inspected rows.
    RPATH=/plain/users4k run warden-get4k $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/filter/users4k run warden-filter $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/resp/users4k run warden-resp $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/resp/users4k run warden-resp $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/filter/users4k run warden-filter $WARDEN_PORT "$WARDEN_PID" $SCHEME
    RPATH=/plain/users4k run warden-get4k $WARDEN_PORT "$WARDEN_PID" $SCHEME
  fi
  if [ "$TLS" = 1 ]; then
    run nginx-hs $NGINX_PORT "$NGINX_PID" https -H "Connection: close"
    run warden-hs $WARDEN_PORT "$WARDEN_PID" https -H "Connection: close"
  fi
done

# Medians over the rounds, then the ratios.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A RPS P50 P99 CPU
names="upstream nginx warden"; [ "$JWT" = 1 ] && names="$names warden-rs256 warden-es256"
[ "$AUTHZ" = 1 ] && names="$names warden-authn warden-authz"
[ "$LIMITS" = 1 ] && names="$names warden-nl warden-rl-mem warden-rl-nohdr warden-rl1 warden-rl-redis"
[ "$INJECTION" = 1 ] && names="$names warden-post warden-inj warden-ct warden-ci"
[ "$RESPONSE" = 1 ] && names="$names warden-get4k warden-filter warden-resp"
[ "$TLS" = 1 ] && names="$names nginx-hs warden-hs"
for name in $names; do
  CPU[$name]=$(awk -v n=$name '$1==n {print $5}' "$work/results" | median)
  RPS[$name]=$(awk -v n=$name '$1==n {print $2}' "$work/results" | median)
  P50[$name]=$(awk -v n=$name '$1==n {print $3}' "$work/results" | median)
  P99[$name]=$(awk -v n=$name '$1==n {print $4}' "$work/results" | median)
done
echo
echo "median of $ROUNDS rounds"
printf '| %-8s | %10s | %8s | %8s | %14s |\n' target "req/s" "p50 us" "p99 us" "CPU us/req"
printf '|----------|------------|----------|----------|----------------|\n'
for name in $names; do
  printf '| %-8s | %10.0f | %8.0f | %8.0f | %14.1f |\n' "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" "${CPU[$name]}"
done
awk -v a="${RPS[warden]}" -v b="${RPS[nginx]}" -v c="${P99[warden]}" -v d="${P99[nginx]}" -v e="${P50[warden]}" -v f="${P50[nginx]}" \
  'BEGIN { printf "ratios warden/nginx: throughput %.2fx, p50 latency %.2fx, p99 latency %.2fx\n", a/b, e/f, c/d }'
if [ "$TLS" = 1 ]; then
  awk -v a="${RPS[warden-hs]}" -v b="${RPS[nginx-hs]}" \
    'BEGIN { printf "new handshakes (Connection: close) warden/nginx: %.2fx (%.0f vs %.0f per second)\n", a/b, a, b }'
fi
if [ "$JWT" = 1 ]; then
  awk -v a="${RPS[warden-rs256]}" -v b="${RPS[warden-es256]}" -v c="${RPS[warden]}" \
    'BEGIN { printf "jwt on every request / no auth (same process): RS256 %.2fx, ES256 %.2fx\n", a/c, b/c }'
fi
if [ "$AUTHZ" = 1 ]; then
  awk -v a="${RPS[warden-authz]}" -v b="${RPS[warden-authn]}" -v c="${P99[warden-authz]}" -v d="${P99[warden-authn]}" \
    'BEGIN { printf "authz + BOLA binding / authentication only (same process): throughput %.2fx, p99 %.2fx\n", a/b, c/d }'
fi
if [ "$LIMITS" = 1 ]; then
  awk -v a="${RPS[warden-rl-mem]}" -v b="${RPS[warden-rl-redis]}" -v c="${RPS[warden-nl]}" -v d="${P99[warden-rl-mem]}" -v e="${P99[warden-rl-redis]}" -v f="${P99[warden-nl]}" \
    'BEGIN { printf "rate_limit always admitting / same route shape without it (/nl): in memory %.2fx (p99 %.2fx), Redis exact %.2fx (p99 %.2fx)\n", a/c, d/f, b/c, e/f }'
  awk -v a="${RPS[warden-rl-nohdr]}" -v c="${RPS[warden-nl]}" 'BEGIN { printf "in memory without RateLimit headers / no limit: %.2fx\n", a/c }'
  awk -v a="${RPS[warden-rl1]}" -v c="${RPS[warden-nl]}" 'BEGIN { printf "in memory, one rate limit only (headers on) / no limit: %.2fx\n", a/c }'
  # Each round's own ratio (its two rl-mem or rl1 samples over its two /nl
  # samples, taken A-B-B-A), then their median: drift between rounds cancels out.
  for row in warden-rl-mem warden-rl1; do
    awk -v row="$row" '$1 == "warden-nl" { nl[int(n++ / 2)] += $2 } $1 == row { rl[int(m++ / 2)] += $2 }
      END { for (r in nl) if (rl[r] > 0) print rl[r] / nl[r] }' "$work/results" | median |
      awk -v n="$ROUNDS" -v row="$row" '{ printf "%s / no limit, median of the %d rounds'"'"' own ratios: %.3fx\n", row, n, $1 }'
  done
fi
if [ "$INJECTION" = 1 ]; then
  awk -v a="${RPS[warden-inj]}" -v b="${RPS[warden-post]}" -v c="${P99[warden-inj]}" -v d="${P99[warden-post]}" \
    'BEGIN { printf "injection on a 1 KiB JSON body / same route without it (same process): throughput %.2fx, p99 %.2fx\n", a/b, c/d }'
  awk -v a="${RPS[warden-ct]}" -v b="${RPS[warden-ci]}" -v c="${RPS[warden-post]}" -v d="${P99[warden-ci]}" -v e="${P99[warden-post]}" \
    'BEGIN { printf "contract (strict) alone, contract + injection / same route without them: %.2fx, %.2fx (p99 %.2fx)\n", a/c, b/c, d/e }'
fi
if [ "$RESPONSE" = 1 ]; then
  awk -v a="${RPS[warden-filter]}" -v b="${RPS[warden-resp]}" -v c="${RPS[warden-get4k]}" -v d="${P99[warden-resp]}" -v e="${P99[warden-get4k]}" \
    'BEGIN { printf "on a 4 KiB JSON response / same route without policies (same process): response_contract %.2fx, response_contract + data_leak %.2fx (p99 %.2fx)\n", a/c, b/c, d/e }'
fi
