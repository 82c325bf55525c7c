#!/usr/bin/env bash
# http_vs_nginx.sh — rendered <MAC>.cfg per second from hotdesk's
# provisioning handler (real SQLite store, 1 device) served through the
# daemon's phone front end (provhttp.NewFastServer, fasthttp) vs nginx
# serving the same bytes as a static file, same run: wrk -t2 -c64 -d10s each,
# REPS times, alternating who goes first. Measured in the same rounds:
#   net_http   — the same handler served by net/http (ServeHTTP): a reference,
#                what this harness measured before the daemon's move to fasthttp;
#   fast_floor — the same bytes from memory on bare fasthttp (bench/rawfiles
#                -server fasthttp): the ceiling of any handler on that library;
#   go_floor   — the same on bare net/http (bench/rawfiles).
# Each server's CPU per request (µs, from /proc) is printed beside its rate,
# and the load average beside every round.
# Usage: prov/provhttp/bench/http_vs_nginx.sh [REPS]   (default 3)
# Env:   DURATION=10s  PROFILE=DIR: a CPU profile of the handler's fasthttp run
#        in round 1 (DIR/http_one_cpu.pprof; the binary is RUN_DIR/provbench)
# Needs Debian packages nginx, wrk, curl (installed when missing); go.
# Loopback only: TCP 8085 (pprof), 8086 (net/http), 8087 (go_floor), 8088 (nginx), 8089 (hotdesk), 8090 (fast_floor).
set -euo pipefail
reps="${1:-3}"; DURATION="${DURATION:-10s}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
run="${RUN_DIR:-/tmp/hotdesk-prov-bench}"
mac=0004f2000001
mkdir -p "$run/www" "$run/tmp"
# shellcheck source=../../../cmd/hotdesk-load/bench/peers.sh
source "$repo/cmd/hotdesk-load/bench/peers.sh"
install_peers nginx wrk curl
for p in 8085 8086 8087 8088 8089 8090; do ! ss -lnt | grep -q ":$p " || { echo "port $p busy" >&2; exit 1; }; done

rm -f "$run/www/$mac.cfg"
(cd "$repo" && go build -o "$run/provbench" ./prov/provhttp/bench/cmd && go build -o "$run/rawfiles" ./prov/provhttp/bench/rawfiles)
"$run/provbench" -listen 127.0.0.1:8089 -netlisten 127.0.0.1:8086 -pprof 127.0.0.1:8085 -out "$run/www/$mac.cfg" \
  2>"$run/provbench.log" &
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
for _ in $(seq 100); do [[ -s "$run/www/$mac.cfg" ]] && break; sleep 0.1; done
[[ -s "$run/www/$mac.cfg" ]] || { echo "provbench wrote no file:" >&2; cat "$run/provbench.log" >&2; exit 1; }
nginx -c "$run/nginx.conf" -g 'daemon off;' &
NPID=$!
"$run/rawfiles" -listen 127.0.0.1:8087 -dir "$run/www" 2>"$run/rawfiles.log" &
GPID=$!
"$run/rawfiles" -server fasthttp -listen 127.0.0.1:8090 -dir "$run/www" 2>"$run/rawfiles_fast.log" &
FPID=$!
trap 'kill -TERM $HPID $NPID $GPID $FPID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:8088/$mac.cfg" && curl -sf -o /dev/null "http://127.0.0.1:8087/$mac.cfg" &&
    curl -sf -o /dev/null "http://127.0.0.1:8090/$mac.cfg" && break
  sleep 0.1
done
for p in 8089 8086 8087 8090; do
  curl -sf "http://127.0.0.1:8088/$mac.cfg" | cmp -s - <(curl -sf "http://127.0.0.1:$p/$mac.cfg") \
    || { echo "nginx and the server on $p serve different bytes" >&2; exit 1; }
done
echo "body: $(wc -c < "$run/www/$mac.cfg") bytes; cores: $(nproc)"

# cpu_ticks PID... → utime+stime of those processes (nginx: master and workers).
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
CLK_TCK="$(getconf CLK_TCK)"
# rps URL PID... → "requests/s cpu-µs-per-request"; a non-2xx answer fails the run.
# With PROF set (a file), the handler's CPU profile is taken for the run's duration.
rps() {
  local url="$1" out c0 c1 r prof=""; shift
  if [[ -n "${PROF:-}" ]]; then
    curl -s -m 60 -o "$PROF" "http://127.0.0.1:8085/debug/pprof/profile?seconds=${DURATION%s}" & prof=$!
  fi
  c0="$(cpu_ticks "$@")"
  out="$(timeout -k 5 60 wrk -t2 -c64 -d"$DURATION" "$url")"
  c1="$(cpu_ticks "$@")"
  [[ -z "$prof" ]] || wait "$prof"
  if grep -q 'Non-2xx' <<<"$out"; then echo "$url: $(grep 'Non-2xx' <<<"$out")" >&2; echo "0 0"; return; fi
  r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  awk -v r="$r" -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v d="${DURATION%s}" \
    'BEGIN { printf "%s %.1f\n", r, (r > 0 ? t / hz * 1e6 / (r * d) : 0) }'
}
for r in $(seq "$reps"); do
  la="$(cut -d' ' -f1-3 /proc/loadavg)"
  NGINX_PIDS=("$NPID" $(pgrep -P "$NPID" || true))
  hp=""
  if [[ -n "${PROFILE:-}" && "$r" == 1 ]]; then mkdir -p "$PROFILE"; hp="$PROFILE/http_one_cpu.pprof"; fi
  if (( r % 2 == 1 )); then
    h=$(PROF="$hp" rps "http://127.0.0.1:8089/$mac.cfg" "$HPID"); n=$(rps "http://127.0.0.1:8088/$mac.cfg" "${NGINX_PIDS[@]}")
    s=$(rps "http://127.0.0.1:8086/$mac.cfg" "$HPID"); f=$(rps "http://127.0.0.1:8090/$mac.cfg" "$FPID")
    g=$(rps "http://127.0.0.1:8087/$mac.cfg" "$GPID")
  else
    g=$(rps "http://127.0.0.1:8087/$mac.cfg" "$GPID"); f=$(rps "http://127.0.0.1:8090/$mac.cfg" "$FPID")
    s=$(rps "http://127.0.0.1:8086/$mac.cfg" "$HPID"); n=$(rps "http://127.0.0.1:8088/$mac.cfg" "${NGINX_PIDS[@]}")
    h=$(PROF="$hp" rps "http://127.0.0.1:8089/$mac.cfg" "$HPID")
  fi
  read -r h hc <<<"$h"; read -r n nc <<<"$n"; read -r s sc <<<"$s"; read -r f fc <<<"$f"; read -r g gc <<<"$g"
  awk -v r="$r" -v h="$h" -v n="$n" -v s="$s" -v f="$f" -v g="$g" -v hc="$hc" -v nc="$nc" -v sc="$sc" -v fc="$fc" \
    -v gc="$gc" -v la="$la" 'BEGIN { printf "rep=%s hotdesk_req_per_s=%s nginx_req_per_s=%s ratio=%.2f net_http_req_per_s=%s net_http_ratio=%.2f fast_floor_ratio=%.2f go_floor_ratio=%.2f cpu_us_per_req hotdesk=%s nginx=%s net_http=%s fast_floor=%s go_floor=%s load_average=%s\n",
      r, h, n, (n > 0 ? h/n : 0), s, (n > 0 ? s/n : 0), (n > 0 ? f/n : 0), (n > 0 ? g/n : 0), hc, nc, sc, fc, gc, la }'
done
