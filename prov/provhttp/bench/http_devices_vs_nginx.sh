#!/usr/bin/env bash
# http_devices_vs_nginx.sh — the realistic provisioning case through the real
# daemon: DEVICES (1,000) Polycom phones enrolled by hotdeskd serve, each
# fetching its own <MAC>-hotdesk.cfg (~7 KiB: the site carries 80 BLF
# parameters) with digest authentication (MD5, qop=auth, a nonce per device,
# nc counting up: computed per request by wrk's digest.lua), against nginx
# serving the same 1,000 files statically (the same requests; nginx ignores
# the Authorization header). wrk -t2 -c64 -d10s each, REPS times, alternating
# who goes first; the load average is printed beside every pair. A bare
# net/http handler serving the same bytes from memory (bench/rawfiles, no
# digest check) runs in the same rounds: the floor of any net/http server
# here; so does the same program on github.com/valyala/fasthttp (-server
# fasthttp), the floor of that library (fast_floor).
# Each server's CPU per request (µs, from /proc) is printed beside its rate.
# With HOTDESKD_BASE (another build, e.g. main's) a second daemon is enrolled
# the same way and measured in the same rounds, next to the first: before and
# after in one window, as ratios (new_vs_base: rate; new_vs_base_cpu: CPU per
# request), which a loaded machine's drift between runs would swamp.
#
# Usage: prov/provhttp/bench/http_devices_vs_nginx.sh [REPS]   (default 3)
# Env:   DEVICES=1000  HOTDESKD=prebuilt binary  HOTDESKD_BASE=a binary to compare it with  RAWFILES=prebuilt rawfiles
#        DURATION=10s  KEEP=1 keeps the temp dir
#        PROFILE=DIR: CPU profiles of hotdeskd (DIR/http_cpu.pprof) and of the bare net/http floor
#        (DIR/rawfiles_cpu.pprof) during their wrk runs of round PROFILE_REP (default 1; round 1 holds
#        each device's first render after prep marked it deployed, later rounds only cached fetches)
# Needs Debian packages nginx, wrk, curl, python3 (installed when missing, as root); go.
# Loopback only: TCP 5090 (nginx), 5091 (hotdeskd provisioning), 5092 (its admin API), 5094 (rawfiles),
# 5095 (rawfiles' pprof), 5099 (rawfiles on fasthttp), 5100 (its pprof); with HOTDESKD_BASE 5096, 5097,
# 5098 (its provisioning, admin and SIP).
set -euo pipefail
REPS="${1:-3}"; DEVICES="${DEVICES:-1000}"; DURATION="${DURATION:-10s}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=../../../cmd/hotdesk-load/bench/peers.sh
source "$REPO/cmd/hotdesk-load/bench/peers.sh"
install_peers nginx wrk curl python3
RUN="$(mktemp -d /tmp/hotdesk-httpdev.XXXXXX)"
mkdir -p "$RUN/www" "$RUN/tmp"
chmod 755 "$RUN" "$RUN/www" # nginx's workers run as www-data
PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stop_pid() {
  local pid="$1" i; kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p"; done; [[ "${KEEP:-}" == 1 ]] || rm -rf "$RUN"; }
trap cleanup EXIT
for p in 5090 5091 5092 5094 5095 5096 5097 5098 5099 5100; do ! ss -lnt | grep -q ":$p " || { log "port $p busy"; exit 1; }; done

HOTDESKD="${HOTDESKD:-$RUN/hotdeskd}"
[[ -x "$HOTDESKD" ]] || { log "building hotdeskd"; (cd "$REPO" && go build -o "$HOTDESKD" ./cmd/hotdeskd); }
RAWFILES="${RAWFILES:-$RUN/rawfiles}"
[[ -x "$RAWFILES" ]] || (cd "$REPO" && go build -o "$RAWFILES" ./prov/provhttp/bench/rawfiles)
# start_daemon BIN DIR PROV ADMIN SIP WWW DEVICES_FILE: serves hotdeskd from DIR on those ports, with
# the site and DEVICES enrolled devices; their files go to WWW. Sets DPID.
start_daemon() {
  local bin="$1" dir="$2" prov="$3" admin="$4" sip="$5" www="$6" devs="$7"
  mkdir -p "$dir" "$www"; chmod 755 "$www"
  cat > "$dir/hotdesk.yaml" <<EOF
data_dir: $dir/data
log: {level: warn}
admin: {listen: "127.0.0.1:$admin", initial_user: admin, initial_password: admin-bench, pprof: true}
sip: {listen: ["udp://127.0.0.1:$sip"], domain: hotdesk.test}
# The 1,000 phones share one loopback address: enrolments and challenges (a 401 per nonce) per source are not limited.
provisioning: {http_listen: "127.0.0.1:$prov", tftp_listen: "", enroll: auto, fail_burst: 100000,
  enroll_per_source_per_minute: 100000}
dhcp: {mode: "off"}
EOF
  "$bin" check-config -c "$dir/hotdesk.yaml" >/dev/null
  "$bin" serve -c "$dir/hotdesk.yaml" >"$dir/hotdeskd.log" 2>&1 &
  DPID=$!; PIDS+=("$DPID")
  for _ in $(seq 300); do curl -fs -m 1 "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
    kill -0 "$DPID" 2>/dev/null || { log "hotdeskd exited"; cat "$dir/hotdeskd.log" >&2; exit 1; }; sleep 0.1; done
  # A site for loopback phones with 80 BLF parameters: ~7 KiB per device file.
  ADMIN="$admin" python3 - <<'PY'
import base64, json, os, urllib.request
p = {f"attendant.resourceList.{i}.address": f"sip:blf-extension-{1000+i}@hotdesk.test" for i in range(1, 41)}
p.update({f"attendant.resourceList.{i}.label": f"Colleague number {i:02d}" for i in range(1, 41)})
req = urllib.request.Request(f"http://127.0.0.1:{os.environ['ADMIN']}/api/v1/sites", method="POST",
    data=json.dumps({"name": "HQ", "subnets": ["127.0.0.0/8"], "params": p}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(b"admin:admin-bench").decode()})
assert urllib.request.urlopen(req).status == 201
PY
  log "enrolling $DEVICES devices ($bin)"
  python3 "$HERE/devices_prep.py" "http://127.0.0.1:$prov" "$DEVICES" "$www" "$devs"
}
start_daemon "$HOTDESKD" "$RUN" 5091 5092 5093 "$RUN/www" "$RUN/devices.txt"; HPID=$DPID
BPID=""
if [[ -n "${HOTDESKD_BASE:-}" ]]; then
  start_daemon "$HOTDESKD_BASE" "$RUN/base" 5096 5097 5098 "$RUN/base/www" "$RUN/base/devices.txt"; BPID=$DPID
fi

cat > "$RUN/nginx.conf" <<NGX
worker_processes auto;
pid $RUN/nginx.pid;
error_log $RUN/nginx_error.log warn;
events { worker_connections 1024; }
http {
  types { text/plain cfg; }
  access_log off; sendfile on;
  client_body_temp_path $RUN/tmp; proxy_temp_path $RUN/tmp; fastcgi_temp_path $RUN/tmp;
  uwsgi_temp_path $RUN/tmp; scgi_temp_path $RUN/tmp;
  server { listen 127.0.0.1:5090; root $RUN/www; }
}
NGX
nginx -c "$RUN/nginx.conf" -g 'daemon off;' &
NPID=$!; PIDS+=("$NPID")
"$RAWFILES" -listen 127.0.0.1:5094 -pprof 127.0.0.1:5095 -dir "$RUN/www" 2>"$RUN/rawfiles.log" &
RPID=$!; PIDS+=("$RPID")
"$RAWFILES" -server fasthttp -listen 127.0.0.1:5099 -pprof 127.0.0.1:5100 -dir "$RUN/www" 2>"$RUN/rawfiles_fast.log" &
FPID=$!; PIDS+=("$FPID")
for _ in $(seq 50); do curl -fs -m 1 -o /dev/null "http://127.0.0.1:5090/0004f2000001-hotdesk.cfg" &&
  curl -fs -m 1 -o /dev/null "http://127.0.0.1:5094/0004f2000001-hotdesk.cfg" &&
  curl -fs -m 1 -o /dev/null "http://127.0.0.1:5099/0004f2000001-hotdesk.cfg" && break; sleep 0.1; done
echo "files: $DEVICES, $(du -b "$RUN/www/0004f2000001-hotdesk.cfg" | cut -f1) bytes each (first); cores: $(nproc)"

# cpu_ticks PID... → utime+stime of those processes and their threads (nginx: master and workers).
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
CLK_TCK="$(getconf CLK_TCK)"
# rps URL PID... → "requests/s cpu-µs-per-request"; a non-2xx answer fails the run (a digest the daemon refused).
# With PROF set (a URL, then a file), a CPU profile is taken for the run's duration.
rps() {
  local url="$1" out c0 c1 r prof=""; shift
  if [[ -n "${PROF:-}" ]]; then
    curl -s -m 60 -o "${PROF#* }" "${PROF% *}/debug/pprof/profile?seconds=${DURATION%s}" & prof=$!
  fi
  c0="$(cpu_ticks "$@")"
  out="$(timeout -k 5 60 wrk -t2 -c64 -d"$DURATION" -s "$HERE/digest.lua" "$url" -- "${DEVS:-$RUN/devices.txt}")"
  c1="$(cpu_ticks "$@")"
  [[ -z "$prof" ]] || wait "$prof"
  if grep -q 'Non-2xx' <<<"$out"; then log "$url: $(grep 'Non-2xx' <<<"$out")"; echo "0 0"; return; fi
  r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  awk -v r="$r" -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v d="${DURATION%s}" \
    'BEGIN { printf "%s %.1f\n", r, (r > 0 ? t / hz * 1e6 / (r * d) : 0) }'
}
for r in $(seq "$REPS"); do
  # Fresh nonces: one nonce serves a device 1,024 answers.
  python3 "$HERE/devices_prep.py" http://127.0.0.1:5091 "$DEVICES" "$RUN/www" "$RUN/devices.txt" --nonces-only
  [[ -z "$BPID" ]] ||
    python3 "$HERE/devices_prep.py" http://127.0.0.1:5096 "$DEVICES" "$RUN/base/www" "$RUN/base/devices.txt" --nonces-only
  la="$(cut -d' ' -f1-3 /proc/loadavg)"
  hp="" gp="" fp=""
  if [[ -n "${PROFILE:-}" && "$r" == "${PROFILE_REP:-1}" ]]; then
    mkdir -p "$PROFILE"
    hp="http://127.0.0.1:5092 $PROFILE/http_cpu.pprof" gp="http://127.0.0.1:5095 $PROFILE/rawfiles_cpu.pprof"
    fp="http://127.0.0.1:5100 $PROFILE/rawfiles_fast_cpu.pprof"
  fi
  NGINX_PIDS=("$NPID" $(pgrep -P "$NPID" || true))
  b="0 0"
  base() { [[ -z "$BPID" ]] || b=$(DEVS="$RUN/base/devices.txt" rps http://127.0.0.1:5096 "$BPID"); }
  if (( r % 2 == 1 )); then h=$(PROF="$hp" rps http://127.0.0.1:5091 "$HPID"); base; n=$(rps http://127.0.0.1:5090 "${NGINX_PIDS[@]}")
    g=$(PROF="$gp" rps http://127.0.0.1:5094 "$RPID"); f=$(PROF="$fp" rps http://127.0.0.1:5099 "$FPID")
  else f=$(PROF="$fp" rps http://127.0.0.1:5099 "$FPID"); g=$(PROF="$gp" rps http://127.0.0.1:5094 "$RPID")
    n=$(rps http://127.0.0.1:5090 "${NGINX_PIDS[@]}")
    base; h=$(PROF="$hp" rps http://127.0.0.1:5091 "$HPID"); fi
  read -r h hc <<<"$h"; read -r n nc <<<"$n"; read -r g gc <<<"$g"; read -r b bc <<<"$b"; read -r f fc <<<"$f"
  awk -v r="$r" -v h="$h" -v n="$n" -v g="$g" -v hc="$hc" -v nc="$nc" -v gc="$gc" -v la="$la" -v f="$f" -v fc="$fc" \
    -v rss="$(awk '/VmRSS/{print int($2/1024)}' /proc/$HPID/status)" \
    'BEGIN { printf "devices_rep=%s hotdesk_req_per_s=%s nginx_req_per_s=%s go_floor_req_per_s=%s fast_floor_req_per_s=%s ratio=%.2f go_floor_ratio=%.2f fast_floor_ratio=%.2f hotdesk_vs_go_floor=%.2f hotdesk_vs_fast_floor=%.2f cpu_us_per_req hotdesk=%s nginx=%s go_floor=%s fast_floor=%s hotdesk_rss_mb=%s load_average=%s\n",
      r, h, n, g, f, (n > 0 ? h/n : 0), (n > 0 ? g/n : 0), (n > 0 ? f/n : 0), (g > 0 ? h/g : 0), (f > 0 ? h/f : 0), hc, nc, gc, fc, rss, la }'
  [[ -z "$BPID" ]] || awk -v r="$r" -v h="$h" -v b="$b" -v hc="$hc" -v bc="$bc" -v n="$n" \
    'BEGIN { printf "devices_rep=%s base_req_per_s=%s base_ratio=%.2f new_vs_base=%.2f cpu_us_per_req base=%s new_vs_base_cpu=%.2f\n",
      r, b, (n > 0 ? b/n : 0), (b > 0 ? h/b : 0), bc, (bc > 0 ? hc/bc : 0) }'
done
