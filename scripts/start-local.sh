#!/usr/bin/env bash
# `npm start`: a whole Grid on this machine — control plane, one local agent and
# an embedded PostgreSQL (unless GRID_DATABASE_URL is set) — then a first job.
# Ctrl-C stops it; the data directory (GRID_DATA_DIR) is kept for next time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/control-plane/main.js ] || npm run --silent build

if ! docker info >/dev/null 2>&1; then
  cat >&2 <<'MSG'
grid: cannot reach a Docker engine (`docker info` failed), and Grid runs every job in a container.
  Debian/Ubuntu:  sudo apt-get install -y docker.io && sudo systemctl start docker
  (no systemd?)   sudo sh -c 'dockerd > /var/log/dockerd.log 2>&1 &'
Then run `npm start` again.
MSG
  exit 1
fi

# Jobs need an image on the node. Use the public busybox when it can be had,
# else build one locally from Debian's static busybox (no registry needed).
image=${GRID_DEFAULT_IMAGE:-}
if [ -z "$image" ]; then
  if docker image inspect busybox:1.37 >/dev/null 2>&1 || docker pull -q busybox:1.37 >/dev/null 2>&1; then
    image=busybox:1.37
  else
    bash scripts/build-images.sh busybox >&2
    image=grid-test/busybox:1
  fi
fi
runtimes=${GRID_RUNTIMES:-}
if [ -z "$runtimes" ]; then
  runtimes=$(mktemp --suffix=.json)
  python_image=python:3.12-slim
  docker image inspect "$python_image" >/dev/null 2>&1 || ! docker image inspect grid-test/python:3 >/dev/null 2>&1 || python_image=grid-test/python:3
  printf '{ "sh": { "image": "%s" }, "python": { "image": "%s" } }\n' "$image" "$python_image" > "$runtimes"
fi

# Plaintext without authentication: a development Grid on loopback. README's
# "Running on a network" sets up TLS and tokens.
GRID_LOG_LEVEL=${GRID_LOG_LEVEL:-warn} node dist/control-plane/main.js --local-agent --plaintext \
  --default-image "$image" --runtimes "$runtimes" "$@" &
control_plane=$!
trap 'kill -TERM $control_plane 2>/dev/null || true; wait $control_plane' INT TERM

server=${GRID_LISTEN:-127.0.0.1:7070}
for _ in $(seq 300); do
  kill -0 $control_plane 2>/dev/null || { wait $control_plane; exit $?; }
  node dist/cli/main.js -s "$server" nodes >/dev/null 2>&1 && break
  sleep 0.2
done

echo "Running a first job: gridctl run -- sh -c 'echo hello from \$(hostname) ...'"
node dist/cli/main.js -s "$server" run -- sh -c 'echo "hello from $(hostname), a container run by Grid"'
cat <<MSG

Grid is running on $server (Ctrl-C stops it; jobs still running are taken up at the next start). Try:
  npx gridctl run -- uname -a
  npx gridctl run examples/hello.sh -- world
  npx gridctl list
  npx gridctl nodes
MSG
wait $control_plane
