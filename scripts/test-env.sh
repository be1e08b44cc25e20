#!/usr/bin/env bash
# Makes the services the tests need available, on a clean machine too: a running
# PostgreSQL with a `grid` role, a running Docker engine, the docker-registry
# program, and the local test images.
# Idempotent: what is already there is reused. Runs as `npm test`'s pretest.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "test-env: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PGURL=${GRID_TEST_DATABASE_URL:-postgres://grid:grid@127.0.0.1:5432/postgres}

# --- PostgreSQL -------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster "$version" main start
  else
    log "no PostgreSQL found: install postgresql, or set GRID_TEST_DATABASE_URL to a server you have"
    exit 1
  fi
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if [ -z "${GRID_TEST_DATABASE_URL:-}" ]; then
  # The tests log in as a dedicated superuser role (they create a database per test file).
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grid') THEN
      CREATE ROLE grid LOGIN SUPERUSER PASSWORD 'grid';
    END IF; END \\\$\\\$\"" >/dev/null
fi
psql "$PGURL" -qAtc 'SELECT 1' >/dev/null || { log "cannot log in to $PGURL"; exit 1; }

# --- Docker -----------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    log "installing Docker (docker.io)"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/grid-test-dockerd.log 2>&1 &'
    for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  docker info >/dev/null 2>&1 || { log "Docker did not start; see /var/log/grid-test-dockerd.log"; exit 1; }
fi

# --- Clients in other languages ------------------------------------------------
# examples/python and examples/ruby run against a real Grid: protoc 3.21 with Debian's gRPC plugin
# (python3-grpc-tools bundles a protoc too old for proto3 `optional`), and grpcio.
if ! command -v protoc >/dev/null || [ ! -x /usr/bin/grpc_python_plugin ] || ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  log "installing protoc, its gRPC plugins and python3-grpcio"
  apt_install protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
fi
# examples/ruby, the second language: protoc's built-in Ruby generator and Debian's ruby-grpc.
if [ ! -x /usr/bin/ruby ] || ! /usr/bin/ruby -e 'require "grpc"; require "google/protobuf"' 2>/dev/null; then
  log "installing ruby-grpc"
  apt_install ruby ruby-grpc ruby-google-protobuf
fi

# --- Image registry -------------------------------------------------------------
# The pull tests run their own registry process (nothing can be pulled from the
# internet here); this is its program, Debian's build of the CNCF distribution server.
if [ ! -x /usr/bin/docker-registry ]; then
  log "installing docker-registry"
  apt_install docker-registry
  # Where systemd runs, the package starts a registry on :5000; the tests need only the program.
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# --- Test images --------------------------------------------------------------
bash scripts/build-images.sh busybox python
log "PostgreSQL, Docker, a registry program and test images are ready"
