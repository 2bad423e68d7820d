#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs them.
# Debian's etcd-server and etcd-client are the oracle and a real client for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# `npm install`, not `npm ci`: the lock lacks some foreign-platform optional packages
# (msgpackr-extract for darwin/win32) that the registry here does not list, and `npm ci`
# refuses such a lock even though nothing on this platform needs them.
npm install --no-audit --no-fund
npm test "$@"
