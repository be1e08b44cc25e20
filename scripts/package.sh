#!/usr/bin/env bash
# `npm run package`: the package a production host installs from, dist/grid-VERSION.tar.gz:
# the one-file agent and control plane, gridctl, the systemd units, install.sh and the
# README. Built from what `npm run build` made; nothing in it needs npm or node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
out=${1:-dist}
for f in dist/bundle/grid-agent.mjs dist/bundle/grid-control-plane.mjs dist/bundle/gridctl.cjs; do
  [ -e "$f" ] || { echo "package.sh: $f is missing; run npm run build first" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/grid-$version"
mkdir -p "$dir/systemd"
cp dist/bundle/grid-agent.mjs dist/bundle/grid-control-plane.mjs dist/bundle/gridctl.cjs "$dir/"
cp bin/gridctl.cjs "$dir/gridctl"
cp systemd/grid-agent.service systemd/grid-control-plane.service "$dir/systemd/"
cp scripts/install.sh README.md "$dir/"
echo "$version" >"$dir/VERSION"
chmod 0755 "$dir/install.sh" "$dir/gridctl"
mkdir -p "$out"
tar -C "$stage" -czf "$out/grid-$version.tar.gz" "grid-$version"
echo "$out/grid-$version.tar.gz"
