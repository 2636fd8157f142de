# Shared by bench/run.sh, bench/callgrind.sh, bench/cachesim.sh and bench/pgo.sh
# (sourced, not run).

# valgrind_tools_and_warden: installs nginx, wrk and valgrind from Debian's
# packages if missing, and builds warden (warden_build below).
valgrind_tools_and_warden() {
  local t
  for t in nginx wrk valgrind; do
    if ! command -v "$t" >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk valgrind >/dev/null
      break
    fi
  done
  warden_build
}

# warden_build: sets WARDEN to the binary to measure: WARDEN_BIN if set; with
# PGO=1 the profile-guided build of the current source (bench/pgo.sh trains a
# profile when target/pgo.profdata is missing, else the existing one is reused:
# delete it to retrain after larger changes); else `cargo build --release`.
warden_build() {
  if [ -n "${WARDEN_BIN:-}" ]; then
    WARDEN=$WARDEN_BIN
  elif [ "${PGO:-0}" = 1 ]; then
    if [ -f target/pgo.profdata ]; then
      # The same flags as bench/pgo.sh's last step: only what changed rebuilds.
      RUSTFLAGS="-Cprofile-use=$PWD/target/pgo.profdata" cargo build --release -q -p warden --target-dir target/pgo
    else
      bench/pgo.sh
    fi
    WARDEN=$PWD/target/pgo/release/warden
  else
    cargo build --release -p warden >/dev/null 2>&1 || cargo build --release -p warden
    WARDEN=$PWD/target/release/warden
  fi
}

# nginx_conf DIR HTTP-BLOCK-BODY [MAIN-DIRECTIVES]: a single-worker nginx with
# logs off and temp files in DIR, in the foreground.
nginx_conf() {
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<CONF
daemon off; ${3:-} worker_processes 1; pid $1/nginx.pid; error_log $1/error.log crit;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $1; proxy_temp_path $1;
  fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  keepalive_requests 1000000;
  $2
}
CONF
}

# warden_conf FILE WARDEN-PORT ADMIN-PORT UPSTREAM-PORT [LISTENER-OPTIONS]:
# warden as a plain reverse proxy for everything, access log off.
warden_conf() {
  cat > "$1" <<CONF
listeners: [{ name: bench, bind: "127.0.0.1:$2", ${5:-plain_http: serve} }]
admin: { bind: "127.0.0.1:$3" }
access_log: off
# wrk's 64 connections all come from 127.0.0.1: with the default cap of 64 per
# client address, one of a run's connections was refused while the previous
# run's were still closing (one wrk read error per row).
limits: { max_connections_per_ip: 1024 }
services: [{ name: api, targets: ["127.0.0.1:$4"], pool: { max_idle_per_target: 256 } }]
routes:
  - { id: all, path: { prefix: / }, service: api }
CONF
}

# injection_routes POST_LUA: the INJECTION=1 routes (plain /post, `injection`
# /inj, `contract` strict to bench/order-1k.yaml /ct, and `contract` +
# `injection` /ci: issue 7's "contract validation plus injection detection"),
# as YAML list items for `routes:`; writes the wrk script that POSTs
# bench/order-1k.json to POST_LUA.
injection_routes() {
  printf '  - id: post\n    path: { prefix: /post }\n    service: api\n  - id: inj\n    path: { prefix: /inj }\n    service: api\n    policies:\n      - type: injection\n'
  for id in ct ci; do
    printf '  - id: %s\n    path: { prefix: /%s }\n    service: api\n    policies:\n      - type: contract\n        spec: "%s"\n        base_path: /%s\n        strict: true\n' \
      "$id" "$id" "$PWD/bench/order-1k.yaml" "$id"
  done
  printf '      - type: injection\n'
  { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
    printf 'wrk.body = [==[%s]==]\n' "$(cat bench/order-1k.json)"; } > "$1"
}

# response_routes: the RESPONSE=1 routes (plain /plain, response_contract
# /filter, response_contract + data_leak /resp, over bench/users-4k.yaml), as
# YAML list items for `routes:`.
response_routes() {
  printf '  - id: get4k\n    path: { prefix: /plain }\n    service: api\n'
  for id in filter resp; do
    printf '  - id: %s\n    path: { prefix: /%s }\n    service: api\n    policies:\n      - type: response_contract\n        spec: "%s"\n        base_path: /%s\n' \
      "$id" "$id" "$PWD/bench/users-4k.yaml" "$id"
  done
  printf '      - type: data_leak\n'
}

# bench_cert DIR: a two-day ECDSA P-256 certificate for localhost and
# 127.0.0.1, DIR/cert.pem with its key DIR/key.pem.
bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/key.pem" -out "$1/cert.pem" \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
}

# jwt_tokens DIR: RS256 and ES256 public keys and a valid token for each in DIR
# (crates/warden-testkit/examples/mint_tokens.rs).
jwt_tokens() {
  cargo run -q --release -p warden-testkit --example mint_tokens -- "$1" >/dev/null
}

# jwt_policy DIR: a `jwt` policy list item (routes' `policies:` indent) that
# accepts the tokens jwt_tokens wrote to DIR.
jwt_policy() {
  cat <<POLICY
      - type: jwt
        issuers:
          - issuer: https://idp.test
            audiences: [orders-api]
            algorithms: [RS256, ES256]
            keys:
              - { kid: rsa-1, public_key_file: "$1/rsa.pub.pem" }
              - { kid: ec-1, public_key_file: "$1/ec.pub.pem" }
POLICY
}
