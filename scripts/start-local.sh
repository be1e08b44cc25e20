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

# Jobs need images on the node, and every built-in runtime should work offline.
# For each, use the public image when this engine has it or can pull it, else
# build a local one once (scripts/build-images.sh: no registry needed; the
# python image needs a Debian mirror and about a minute, the others seconds).
pick_image() { # public image, build-images target, local image name
  if docker image inspect "$1" >/dev/null 2>&1 || timeout 20 docker pull -q "$1" >/dev/null 2>&1; then
    echo "$1"
  elif docker image inspect "$3" >/dev/null 2>&1 || bash scripts/build-images.sh "$2" >&2; then
    echo "$3"
  else
    echo "grid: could not build $3; $2 jobs will fail IMAGE_UNAVAILABLE until $1 is on this engine" >&2
    echo "$1"
  fi
}
image=${GRID_DEFAULT_IMAGE:-$(pick_image busybox:1.37 busybox grid-test/busybox:1)}
runtimes=${GRID_RUNTIMES:-}
if [ -z "$runtimes" ]; then
  docker image inspect grid-test/python:3 >/dev/null 2>&1 || docker image inspect python:3.12-slim >/dev/null 2>&1 ||
    echo "grid: building a local python image once (about a minute)" >&2
  runtimes=$(mktemp --suffix=.json)
  printf '{ "sh": { "image": "%s" }, "bash": { "image": "%s" }, "node": { "image": "%s" }, "python": { "image": "%s" } }\n' \
    "$image" \
    "$(pick_image bash:5.2 bash grid-test/bash:1)" \
    "$(pick_image node:22-slim node grid-test/node:1)" \
    "$(pick_image python:3.12-slim python grid-test/python:3)" > "$runtimes"
fi

# Plaintext without authentication: a development Grid on loopback. README's
# "Running on a network" sets up TLS and tokens.
# In a session of its own: a terminal's Ctrl-C goes to the whole foreground
# process group, and would stop the embedded PostgreSQL under the control plane
# before the control plane had recorded its agent's disconnect. The trap below
# stops the control plane, which stops its PostgreSQL last.
GRID_LOG_LEVEL=${GRID_LOG_LEVEL:-warn} setsid node dist/control-plane/main.js --local-agent --plaintext \
  --default-image "$image" --runtimes "$runtimes" "$@" &
control_plane=$!
stop() {
  trap '' INT TERM
  kill -TERM $control_plane 2>/dev/null || true
  wait $control_plane && code=0 || code=$?
  echo "Grid stopped; its jobs and logs are kept for the next npm start." >&2
  exit $code
}
trap stop INT TERM

server=${GRID_LISTEN:-127.0.0.1:7070}
for _ in $(seq 300); do
  kill -0 $control_plane 2>/dev/null || { wait $control_plane; exit $?; }
  node bin/gridctl.cjs -s "$server" nodes >/dev/null 2>&1 && break
  sleep 0.2
done

echo "Running a first job: gridctl run -- sh -c 'echo hello from \$(hostname) ...'"
node bin/gridctl.cjs -s "$server" run -- sh -c 'echo "hello from $(hostname), a container run by Grid"'
cat <<MSG

Grid is running on $server (Ctrl-C stops it; jobs still running are taken up at the next start). Try:
  npx gridctl run -- uname -a
  npx gridctl run examples/hello.sh -- world
  npx gridctl list
  npx gridctl nodes
MSG
wait $control_plane
