#!/usr/bin/env bash
# Installs what the project needs from Debian (mosquitto, mosquitto-clients, and
# chromium when asked), with apt when running as root or with password-less sudo;
# otherwise says exactly what to install. Used by `make up` and `make test`.
set -euo pipefail

want=(mosquitto mosquitto-clients)
[[ "${1:-}" == "--browser" ]] && want+=(chromium)
# the deployment test's boards and controller (tests/testbed/)
[[ "${1:-}" == "--testbed" ]] && want+=(debootstrap systemd-container openssh-client iproute2 util-linux)

have() {
  case "$1" in
    mosquitto) command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] ;;
    mosquitto-clients) command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null && command -v mosquitto_passwd >/dev/null ;;
    chromium) command -v chromium >/dev/null ;;
    debootstrap) command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] ;;
    systemd-container) command -v systemd-nspawn >/dev/null ;;
    openssh-client) command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ;;
    iproute2) command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] ;;
    util-linux) command -v nsenter >/dev/null && command -v setpriv >/dev/null ;;
  esac
}

missing=()
for pkg in "${want[@]}"; do have "$pkg" || missing+=("$pkg"); done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts its own mosquitto service on port 1883; the project never uses it.
