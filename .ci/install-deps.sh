#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real peers, only when missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have sipp            || need+=(sip-tester)
have baresip         || need+=(baresip-core)
have dhclient        || need+=(isc-dhcp-client)
have tftp            || need+=(tftp-hpa)
have curl            || need+=(curl)
have ip              || need+=(iproute2)
have gcc             || need+=(gcc libc6-dev)
have promtool        || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
have lintian         || need+=(lintian)
have systemd-analyze || need+=(systemd)
have dpkg-deb        || need+=(dpkg)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "install-deps: apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${need[@]}"
