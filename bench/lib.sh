# Shared by bench/run.sh and bench/callgrind.sh (sourced, not run).

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
