#!/usr/bin/env bash
# http_vs_nginx.sh — rendered <MAC>.cfg per second from hotdesk's
# provisioning handler (real SQLite store, 1 device) vs nginx serving the
# same bytes as a static file, same run: wrk -t2 -c64 -d10s each, REPS times.
# A bare net/http handler writing the same bytes is measured too: the
# ceiling any Go handler on this machine can reach.
# Needs Debian packages nginx and wrk (installed when missing). Usage: http_vs_nginx.sh [REPS]
set -euo pipefail
reps="${1:-3}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
run="${RUN_DIR:-/tmp/hotdesk-prov-bench}"
mac=0004f2000001
mkdir -p "$run/www" "$run/tmp"
# shellcheck source=../../../cmd/hotdesk-load/bench/peers.sh
source "$repo/cmd/hotdesk-load/bench/peers.sh"
install_peers nginx wrk

(cd "$repo" && go build -o "$run/provbench" ./prov/provhttp/bench/cmd)
"$run/provbench" -listen 127.0.0.1:8089 -raw 127.0.0.1:8087 -out "$run/www/$mac.cfg" 2>"$run/provbench.log" &
HPID=$!
cat > "$run/nginx.conf" <<NGX
worker_processes auto;
pid $run/nginx.pid;
error_log $run/nginx_error.log warn;
events { worker_connections 1024; }
http {
  types { text/plain cfg; }
  access_log off; sendfile on;
  client_body_temp_path $run/tmp; proxy_temp_path $run/tmp; fastcgi_temp_path $run/tmp;
  uwsgi_temp_path $run/tmp; scgi_temp_path $run/tmp;
  server { listen 127.0.0.1:8088; root $run/www; }
}
NGX
for i in $(seq 50); do [[ -s "$run/www/$mac.cfg" ]] && break; sleep 0.1; done
nginx -c "$run/nginx.conf" -g 'daemon off;' &
NPID=$!
trap 'kill -TERM $HPID $NPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
sleep 0.5
curl -sf "http://127.0.0.1:8088/$mac.cfg" | cmp - <(curl -sf "http://127.0.0.1:8089/$mac.cfg") \
  || { echo "hotdesk and nginx serve different bytes" >&2; exit 1; }
echo "body: $(wc -c < "$run/www/$mac.cfg") bytes; cores: $(nproc)"
rps() { timeout -k 5 30 wrk -t2 -c64 -d10s "$1" | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX", $NF > "/dev/stderr"}'; }
for r in $(seq "$reps"); do
  h=$(rps "http://127.0.0.1:8089/$mac.cfg"); n=$(rps "http://127.0.0.1:8088/$mac.cfg"); g=$(rps "http://127.0.0.1:8087/")
  awk -v r="$r" -v h="$h" -v n="$n" -v g="$g" 'BEGIN { printf "rep=%s hotdesk_req_per_s=%s nginx_req_per_s=%s ratio=%.2f bare_net_http_req_per_s=%s (ceiling ratio %.2f)\n", r, h, n, h/n, g, g/n }'
done
