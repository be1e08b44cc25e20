#!/usr/bin/env bash
# Generates the Ruby stubs of Grid's API from proto/ into DIR (default ./gen):
# grid/v1/*_pb.rb and *_services_pb.rb. Needs Debian's protobuf-compiler (its
# Ruby generator is built in) and protobuf-compiler-grpc; nothing generated is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-gen}
mkdir -p "$out"
protoc -I "$here/../../proto" --ruby_out="$out" --grpc_out="$out" \
  --plugin=protoc-gen-grpc=/usr/bin/grpc_ruby_plugin "$here"/../../proto/grid/v1/*.proto
