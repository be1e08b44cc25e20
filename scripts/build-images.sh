#!/usr/bin/env bash
# Builds the local images Grid's tests and the one-machine demo run, without
# pulling anything (no registry is reachable on the dev/CI machines):
#   busybox  → grid-test/busybox:1, a rootfs of Debian's static busybox (~1 s)
#   python   → grid-test/python:3, debootstrap'd Debian with python3 and pip (~60 s)
# An image that already exists is reused. Usage: build-images.sh [busybox] [python]
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(busybox)

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "build-images: need $* installed (apt-get install -y $*), or run as root" >&2; exit 1; fi
  [ -n "${GRID_APT_UPDATED:-}" ] || { apt-get update -qq; export GRID_APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_busybox() {
  local name=grid-test/busybox:1
  have_image "$name" && return 0
  dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/grid/in" "$root/grid/out"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$name" >/dev/null
  rm -rf "$root"
  echo "built $name"
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
    python) build_python ;;
    *) echo "build-images: unknown image '$image' (busybox, python)" >&2; exit 2 ;;
  esac
done
