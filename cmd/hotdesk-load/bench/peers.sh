# shellcheck shell=bash
# peers.sh — sourced by the side-by-side bench scripts: installs the Debian
# packages of the peers they compare against, and nothing else.
#
#   source "$REPO/cmd/hotdesk-load/bench/peers.sh"; install_peers nginx wrk
#
# Only missing packages are installed (dpkg -s), as root, without starting
# their services: a policy-rc.d that refuses every start is put in place
# for the install when the machine has none. Exits the script on failure.
# With HOTDESK_BENCH_NO_INSTALL=1 (make bench) nothing is installed: a
# missing package ends the script with "SKIP: ..." and exit status 3.

install_peers() {
  local missing=() pkg guard="" rc=0
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  (( ${#missing[@]} )) || return 0
  if [[ "${HOTDESK_BENCH_NO_INSTALL:-0}" == 1 ]]; then
    echo "SKIP: peer not installed: Debian packages ${missing[*]} missing (apt-get install ${missing[*]})"
    exit 3
  fi
  if (( EUID != 0 )); then
    echo "$0: missing Debian packages ${missing[*]}; run as root to install them" >&2; exit 1
  fi
  echo "$0: apt-get install ${missing[*]}" >&2
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
  fi
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
  [[ -z "$guard" ]] || rm -f /usr/sbin/policy-rc.d
  (( rc == 0 )) || exit "$rc"
}
