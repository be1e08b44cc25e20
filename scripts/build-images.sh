#!/usr/bin/env bash
# Builds the local images Grid's tests and the one-machine demo run, without
# pulling anything (no registry is reachable on the dev/CI machines):
#   busybox  → grid-test/busybox:1, a rootfs of Debian's static busybox (~1 s)
#   bash     → grid-test/bash:1, the busybox rootfs plus this host's bash (~1 s)
#   node     → grid-test/node:1, the busybox rootfs plus this host's node (~5 s)
#   python   → grid-test/python:3, debootstrap'd Debian with python3 and pip (~60 s)
# bash and node are copied from the host with the shared libraries ldd names, so
# they need no network at all; python needs a Debian mirror (apt works here).
# An image that already exists is reused. Usage: build-images.sh [busybox] [bash] [node] [python]
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(busybox)

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "build-images: need $* installed (apt-get install -y $*), or run as root" >&2; exit 1; fi
  [ -n "${GRID_APT_UPDATED:-}" ] || { apt-get update -qq; export GRID_APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# A minimal rootfs in $1: Debian's static busybox with a link per applet.
busybox_root() {
  local root=$1
  dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/grid/in" "$root/grid/out"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
}

# Copies host binary $2 to $3 inside rootfs $1, with every shared library ldd
# resolves for it, at the same paths (the dynamic loader included).
copy_host_binary() {
  local root=$1 binary; binary=$(readlink -f "$2")
  [ -x "$binary" ] || { echo "build-images: $2 is not on this host" >&2; exit 1; }
  rm -f "$root$3"
  install -D -m 755 "$binary" "$root$3"
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# Imports rootfs $2 as image $1 (Cmd $3) and removes the directory.
import_root() {
  tar -C "$2" -c . | docker import -c 'ENV PATH=/bin' -c "CMD [\"$3\"]" - "$1" >/dev/null
  rm -rf "$2"
  echo "built $1"
}

build_busybox() {
  local name=grid-test/busybox:1
  have_image "$name" && return 0
  local root; root=$(mktemp -d)
  busybox_root "$root"
  import_root "$name" "$root" sh
}

build_host_copy() { # image name, host command, path in the image
  have_image "$1" && return 0
  local host; host=$(command -v "$2") || { echo "build-images: $1 copies this host's $2, which is not installed" >&2; exit 1; }
  local root; root=$(mktemp -d)
  busybox_root "$root"
  copy_host_binary "$root" "$host" "$3"
  import_root "$1" "$root" "$3"
}

build_python() {
  local name=grid-test/python:3
  have_image "$name" && return 0
  command -v debootstrap >/dev/null || apt_install debootstrap
  local root; root=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv bookworm "$root" >/dev/null
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  mkdir -p "$root/grid/in" "$root/grid/out"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["python3"]' - "$name" >/dev/null
  rm -rf "$root"
  echo "built $name"
}

for image in "${want[@]}"; do
  case "$image" in
    busybox) build_busybox ;;
    bash) build_host_copy grid-test/bash:1 bash /bin/bash ;;
    node) build_host_copy grid-test/node:1 node /bin/node ;;
    python) build_python ;;
    *) echo "build-images: unknown image '$image' (busybox, bash, node, python)" >&2; exit 2 ;;
  esac
done
