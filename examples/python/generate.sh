#!/usr/bin/env bash
# Generates the Python stubs of Grid's API from proto/ into DIR (default ./gen):
# grid/v1/*_pb2.py and *_pb2_grpc.py. Needs Debian's protobuf-compiler and
# protobuf-compiler-grpc (see docs/api.md); nothing generated is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-gen}
mkdir -p "$out"
protoc -I "$here/../../proto" --python_out="$out" --grpc_out="$out" \
  --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin "$here"/../../proto/grid/v1/*.proto
