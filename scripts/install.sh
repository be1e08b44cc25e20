#!/usr/bin/env bash
# Installs a Grid agent or control plane on a Debian or Ubuntu host from the
# package `npm run package` builds (dist/grid-VERSION.tar.gz): the one-file
# program, gridctl, the systemd unit, the `grid` user (control plane) and
# /etc/grid/ROLE.env from the flags; then enables and starts the unit. The
# host needs Node.js 20 or later, and Docker for an agent: no npm, no build tool.
#
#   sudo ./install.sh agent --server cp.internal:7070 --set GRID_TLS_CA=/etc/grid/tls/ca.crt ...
#   sudo ./install.sh control-plane --database-url postgres://grid:...@db/grid --set GRID_LISTEN=0.0.0.0:7070
#   sudo ./install.sh agent --upgrade [--keep-jobs]
#
# --root DIR installs into a scratch root instead (for a look, or an image
# build): nothing is started there, and the unit is enabled with
# `systemctl --root`.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install.sh agent|control-plane [options]
  --server HOST:PORT      agent: the control plane (GRID_SERVER)
  --database-url URL      control plane: its PostgreSQL (GRID_DATABASE_URL)
  --set NAME=VALUE        any other setting for /etc/grid/ROLE.env (repeatable; see --help of the program)
  --upgrade               replace the program and unit, keep the settings (plus any given), restart:
                          an agent drains first (its running jobs end or are handed back)
  --keep-jobs             with --upgrade, agent: restart at once; the new agent takes its containers up
  --no-start              install and enable, do not start
  --root DIR              install into DIR, a scratch root: nothing is started
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
role=$1; shift
case "$role" in
  agent|control-plane) ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; die "the first argument is the role, agent or control-plane, not \"$role\"" ;;
esac

root="" start=1 upgrade=0 keep_jobs=0
settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --server) [ "$role" = agent ] || die "--server is an agent's setting"; settings+=("GRID_SERVER=${2:?--server needs HOST:PORT}"); shift 2 ;;
    --database-url) [ "$role" = control-plane ] || die "--database-url is a control plane's setting"; settings+=("GRID_DATABASE_URL=${2:?--database-url needs a URL}"); shift 2 ;;
    --set)
      [[ "${2:-}" =~ ^GRID_[A-Z0-9_]+= ]] || die "--set takes GRID_NAME=VALUE, not \"${2:-}\""
      [[ "$2" != *$'\n'* ]] || die "--set ${2%%=*}: a value cannot hold a line break"
      settings+=("$2"); shift 2 ;;
    --upgrade) upgrade=1; shift ;;
    --keep-jobs) keep_jobs=1; shift ;;
    --no-start) start=0; shift ;;
    --root) root=$(realpath -m "${2:?--root needs a directory}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ $keep_jobs = 0 ] || [ $upgrade = 1 ] || die "--keep-jobs goes with --upgrade"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
program="grid-$role.mjs"
unit="grid-$role.service"
env_file="$root/etc/grid/$role.env"
for f in "$program" gridctl.cjs gridctl "systemd/$unit"; do
  [ -e "$here/$f" ] || die "$here/$f is missing: run install.sh from the package \`npm run package\` builds"
done
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run it as root (sudo), or give --root DIR"

# The unit names Node by its absolute path: systemd's PATH is not a login shell's.
node=$(command -v node || true)
[ -n "$node" ] || die "Node.js 20 or later is needed (Debian 13 and Ubuntu 24.04: apt-get install nodejs; older releases: NodeSource's packages)"
node=$(realpath "$node")
"$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "Node.js 20 or later is needed; $node is $("$node" --version)"
if [ "$role" = agent ] && [ -z "$root" ] && ! command -v docker >/dev/null && [ ! -S /var/run/docker.sock ]; then
  die "the agent runs jobs with Docker, which this host lacks: apt-get install docker.io"
fi
if [ $upgrade = 1 ] && [ ! -e "$root/etc/systemd/system/$unit" ]; then
  die "--upgrade: $unit is not installed here yet; install it first (without --upgrade)"
fi

echo "installing the Grid $role ($(cat "$here/VERSION" 2>/dev/null || echo unknown version)) into ${root:-/}"
install -d -m 0755 "$root/usr/lib/grid/bin" "$root/usr/lib/grid/dist/bundle" "$root/usr/bin" "$root/usr/share/doc/grid" "$root/etc/systemd/system"
install -m 0644 "$here/$program" "$root/usr/lib/grid/$program"
# gridctl as the repository lays it out: its launcher finds the bundle beside it and keeps a code cache.
install -m 0644 "$here/gridctl.cjs" "$root/usr/lib/grid/dist/bundle/gridctl.cjs"
install -m 0755 "$here/gridctl" "$root/usr/lib/grid/bin/gridctl.cjs"
ln -sfn /usr/lib/grid/bin/gridctl.cjs "$root/usr/bin/gridctl"
[ ! -e "$here/README.md" ] || install -m 0644 "$here/README.md" "$root/usr/share/doc/grid/README.md"
sed "s#^ExecStart=/usr/bin/node #ExecStart=$node #" "$here/systemd/$unit" >"$root/etc/systemd/system/$unit"
chmod 0644 "$root/etc/systemd/system/$unit"

if [ "$role" = control-plane ]; then
  # A system user with no login and no home of its own; its state is the unit's StateDirectory.
  install -d -m 0755 "$root/usr/lib/sysusers.d"
  echo 'u grid - "Grid control plane" /var/lib/grid /usr/sbin/nologin' >"$root/usr/lib/sysusers.d/grid.conf"
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers ${root:+--root="$root"} grid.conf
  elif [ -z "$root" ] && ! id grid >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/grid --no-create-home --shell /usr/sbin/nologin grid
  fi
fi

# Settings: the file kept on an upgrade, each given one set (replacing its old line).
# Created readable by root alone (it may hold a database password), opened to the service's group below.
umask 077
install -d -m 0755 "$root/etc/grid"
[ -e "$env_file" ] || { echo "# Grid $role settings (GRID_* variables; see grid-$role --help). Written by install.sh." >"$env_file"; }
for setting in "${settings[@]}"; do
  name=${setting%%=*}
  grep -v "^$name=" "$env_file" >"$env_file.new" || true
  printf '%s\n' "$setting" >>"$env_file.new"
  mv "$env_file.new" "$env_file"
done
if [ "$role" = control-plane ]; then
  # Readable by the service's user, no one else: it holds the database password.
  chmod 0640 "$env_file"
  # By number from the root's own group file: in a scratch root the host may have no such group.
  gid=$(awk -F: '$1 == "grid" { print $3 }' "$root/etc/group" 2>/dev/null || true)
  chgrp "${gid:-grid}" "$env_file"
else
  chmod 0600 "$env_file"
fi

if [ -n "$root" ]; then
  systemctl --root="$root" enable "$unit" >/dev/null 2>&1 || {
    install -d "$root/etc/systemd/system/multi-user.target.wants"
    ln -sfn "/etc/systemd/system/$unit" "$root/etc/systemd/system/multi-user.target.wants/$unit"
  }
  echo "installed into $root; not started (a scratch root has no running systemd)"
  exit 0
fi

systemctl daemon-reload
systemctl enable "$unit" >/dev/null
if [ $start = 0 ]; then
  echo "installed and enabled; start it with: systemctl start $unit"
elif [ $upgrade = 1 ] && [ $keep_jobs = 1 ] && systemctl is-active --quiet "$unit"; then
  # SIGINT stops the agent at once, leaving its containers; Restart=always starts the new one.
  systemctl kill --signal=SIGINT "$unit"
  echo "restarting onto the new version; running jobs carry on"
elif [ $upgrade = 1 ]; then
  systemctl restart "$unit"
  echo "restarted onto the new version"
else
  systemctl restart "$unit"
  echo "started: systemctl status $unit; journalctl -u $unit"
fi
