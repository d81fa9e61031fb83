#!/usr/bin/env bash
# install-deps.sh: installs the Debian 12 packages polyglot needs to build, test and
# benchmark, only where something is missing. The one list of system packages.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config
  libuv1-dev node-llhttp libcurl4-openssl-dev libcjson-dev libyaml-dev
  libsqlite3-dev libmbedtls-dev
  libcmocka-dev curl openssl
  clang libclang-rt-14-dev
  nodejs npm
  wrk
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# nodejs/npm may come from outside Debian's packages on some machines; accept any
# node >= 18 with npm already on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  keep=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) keep+=("$p") ;; esac
  done
  missing=("${keep[@]+"${keep[@]}"}")
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
