#!/usr/bin/env bash
# Profile-guided release build of warden (PGO): the production build.
#
#   bench/pgo.sh [seconds-per-route]      (default 4)
#
# 1. builds warden instrumented (`-Cprofile-generate`) in target/pgo-gen;
# 2. runs it as a reverse proxy in front of a local nginx upstream and trains it
#    with wrk on loopback on the traffic mix of bench/: small JSON GETs on a
#    plain route and behind `rate_limit`, 1 KiB JSON order POSTs on a plain
#    route and behind `injection`, `contract` and both, 4 KiB JSON responses on
#    a plain route and behind `response_contract` and `data_leak`, GETs behind
#    `jwt` (RS256 and ES256), and GETs over TLS 1.3; SIGTERM then drains it and
#    the profile is written as it exits;
# 3. merges the profile with the llvm-profdata that matches rustc's LLVM
#    (Debian's llvm-N package, installed when missing);
# 4. builds warden with `-Cprofile-use` in target/pgo: the binary is
#    target/pgo/release/warden.
#
# The profile only steers inlining, code layout and branch order: behaviour is
# that of `cargo build --release`. (BOLT on top of this was tried and gave
# nothing measurable: docs/benchmarks.md.)
# Paths the mix does not train (HTTP/2, WebSocket, Redis counters, authz, ...)
# are laid out as cold code: a deployment whose traffic differs should train on
# its own mix (change `train_all`). Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-4}
UP_PORT=18301 WARDEN_PORT=18303 ADMIN_PORT=18304 TLS_PORT=18305
ROOT=$PWD
DATA=$ROOT/target/pgo-data
PROFILE=$ROOT/target/pgo.profdata

llvm_major=$(rustc -vV | awk '/^LLVM version/ { split($3, v, "."); print v[1] }')
# tool NAME PACKAGE: the path of NAME, installing PACKAGE from Debian if missing.
tool() {
  command -v "$1" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  command -v "$1"
}
PROFDATA=$(tool "llvm-profdata-$llvm_major" "llvm-$llvm_major") || {
  echo "pgo: rustc uses LLVM $llvm_major, and llvm-profdata-$llvm_major is neither installed nor installable" \
    "from Debian's llvm-$llvm_major; a profile must be merged by the same LLVM major" >&2
  exit 1
}
for t in nginx wrk curl openssl; do
  if ! command -v "$t" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk curl openssl >/dev/null
    break
  fi
done

echo "pgo: instrumented build (target/pgo-gen)"
rm -rf "$DATA" "$PROFILE"
RUSTFLAGS="-Cprofile-generate=$DATA" cargo build --release -q -p warden --target-dir target/pgo-gen
# Build scripts and proc macros ran instrumented too: their profiles go.
rm -rf "$DATA"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT

. bench/lib.sh
nginx_conf "$work/up" "server { listen 127.0.0.1:$UP_PORT; default_type application/json;
    location ~ /users4k\$ { root $ROOT/bench; try_files /users-4k.json =404; }
    location / { return 200 '{\"id\":42,\"name\":\"ada\",\"roles\":[\"reader\"],\"active\":true}'; } }"
bench_cert "$work"
jwt_tokens "$work/jwt"
warden_conf "$work/warden.yaml" "$WARDEN_PORT" "$ADMIN_PORT" "$UP_PORT"
# A second listener, TLS 1.3, for the same routes.
sed -i "s|^listeners: \[\(.*\)\]$|listeners: [\1, { name: tls, bind: \"127.0.0.1:$TLS_PORT\", tls: { certificates: [{ cert: \"$work/cert.pem\", key: \"$work/key.pem\" }], alpn: [http/1.1] } }]|" "$work/warden.yaml"
cat >> "$work/warden.yaml" <<CONF
  - id: jwt
    path: { prefix: /jwt }
    service: api
    policies:
$(jwt_policy "$work/jwt")
CONF
{ printf '  - id: rl1\n    path: { prefix: /rl1 }\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }\n'
  injection_routes "$work/post.lua"
  response_routes; } >> "$work/warden.yaml"

nginx -c "$work/up/nginx.conf" & pids+=($!)

train() { # path [wrk args...]
  local path=$1 base=${BASE:-http://127.0.0.1:$WARDEN_PORT}; shift
  wrk -t1 -c16 -d"${DUR}s" "$@" "$base$path" | awk -v p="$path" '/Requests\/sec/ { r = $2 } /Non-2xx|Socket errors/ { e = e " " $0 }
    END { printf "  %-16s %s req/s%s\n", p, r, e }'
}
# train_all BINARY: runs BINARY on the mix, then drains and stops it.
train_all() {
  WARDEN_LOG=warn "$1" run --watch-secs 0 --config "$work/warden.yaml" 2>"$work/warden.err" &
  local pid=$!
  pids+=("$pid")
  local port
  for port in $UP_PORT $WARDEN_PORT; do
    for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/users/42" && break; sleep 0.1; done
  done
  echo "pgo: training $1, ${DUR}s per route"
  train /users/42
  train /rl1/users/42
  for p in /post /inj /ct /ci; do train "$p/orders" -s "$work/post.lua"; done
  for p in /plain /filter /resp; do train "$p/users4k"; done
  train /jwt/users/42 -H "Authorization: Bearer $(cat "$work/jwt/rs256.jwt")"
  train /jwt/users/42 -H "Authorization: Bearer $(cat "$work/jwt/es256.jwt")"
  BASE=https://127.0.0.1:$TLS_PORT train /users/42
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

train_all target/pgo-gen/release/warden
ls "$DATA"/*.profraw >/dev/null 2>&1 || { echo "pgo: no profile was written" >&2; cat "$work/warden.err" >&2; exit 1; }
"$PROFDATA" merge -o "$PROFILE" "$DATA"
echo "pgo: profile $(du -h "$PROFILE" | cut -f1), optimised build (target/pgo)"
RUSTFLAGS="-Cprofile-use=$PROFILE" cargo build --release -q -p warden --target-dir target/pgo
echo "pgo: built target/pgo/release/warden"
