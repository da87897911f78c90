#!/usr/bin/env bash
# Installs the Debian packages submitd needs to build, test and benchmark, when missing.
# Idempotent: does nothing (and needs no network) when everything is there.
set -euo pipefail
pkgs=(build-essential pkg-config libevent-dev libssl-dev libsqlite3-dev libsodium-dev
      libjansson-dev libcmocka-dev libcurl4-openssl-dev sqlite3 swaks curl openssl python3
      ca-certificates iproute2)
# The next hops of the delivery and smtp-doctor tests (Postfix's smtp-sink, Dovecot LMTP and
# SASL), only where the tests may install system services: CI (.ci/run sets this) or on request.
[ "${SUBMITD_TEST_INSTALL:-0}" = 1 ] && pkgs+=(postfix dovecot-core dovecot-lmtpd)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm (OAuth interoperability tests mint tokens with the npm package `jose`): a
# machine may have them from another source than Debian's packages, so look for the commands.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
