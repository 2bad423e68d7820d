#!/usr/bin/env bash
# Regenerates src/proto/gen/ from etcd's .proto files (Debian golang-etcd-server-dev).
# Generated files are committed; this needs protoc (Debian protobuf-compiler) only to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/strip-proto.mjs /usr/share/gocode/src/go.etcd.io/etcd proto
rm -rf src/proto/gen && mkdir -p src/proto/gen
protoc -I proto \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/proto/gen \
  --ts_proto_opt=env=node,forceLong=bigint,useJsTypeOverride=true,outputServices=false,importSuffix=.js,esModuleInterop=true,outputPartialMethods=true,useExactTypes=false,snakeToCamel=true \
  $(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
