#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs them.
# Debian's etcd-server and etcd-client are the oracle and a real client for the tests;
# openssl makes the TLS tests' certificates.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v openssl >/dev/null || need+=(openssl) # the TLS tests make their certificates with it
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Exactly the locked dependencies (the lock lists every platform's optional packages, so
# `npm ci` accepts it everywhere); `prepare` compiles the TypeScript once.
npm ci --no-audit --no-fund
npm test "$@"
