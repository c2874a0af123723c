#!/usr/bin/env bash
# Runs one of the README's two commands on a fresh Debian machine: a debootstrap chroot
# (minbase: no compiler, no python3, no Node headers, no bwrap/rg/git/PostgreSQL) with
# only this machine's Node and npm copied in, an empty npm cache and a clean home, as
# root, on a clean clone of HEAD. Not part of `npm test`: it needs root and the network.
#
#   scripts/fresh-machine.sh demo|test [WORKDIR]     (default WORKDIR /srv/agentd-fresh)
#   NPM_VERSION=10 scripts/fresh-machine.sh ...        (npm@10 from the registry instead of this machine's)
#
# WORKDIR/base is the pristine chroot, made once with debootstrap from the mirror apt
# uses here; every run works on a fresh copy of it (WORKDIR/run), unmounted at the end.
set -euo pipefail
which_cmd=${1:?usage: scripts/fresh-machine.sh demo|test [WORKDIR]}
work=${2:-/srv/agentd-fresh}
repo=$(cd "$(dirname "$0")/.." && pwd)
base=$work/base
root=$work/run

readme_command() { # the README's first (demo) or second (test) shell block
  awk '/^```sh$/{n++; getline; if (n == '"$1"') {print; exit}}' "$repo/README.md"
}
case $which_cmd in
  demo) command=$(readme_command 1) ;;
  test) command=$(readme_command 2) ;;
  *) echo "usage: scripts/fresh-machine.sh demo|test [WORKDIR]" >&2; exit 2 ;;
esac

if [ ! -x "$base/bin/sh" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  mirror=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 | tr -d ' ')
  debootstrap --variant=minbase bookworm "$base" "${mirror:-http://deb.debian.org/debian}"
fi

mntns_file=$work/run.mntns
cleanup() {
  # Anything still running inside (a daemon, a server a package started) goes first: what
  # runs in the chroot, or in the mount namespace the README command ran in.
  local ns; ns=$(cat "$mntns_file" 2>/dev/null || true)
  for p in /proc/[0-9]*; do
    inside=
    case "$(readlink "$p/root" 2>/dev/null)" in "$root"|"$root"/*) inside=1 ;; esac
    [ -n "$ns" ] && [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && [ "${p#/proc/}" != $$ ] && inside=1
    [ -n "$inside" ] && echo "fresh-machine: killing ${p#/proc/} left in the chroot" >&2 && kill -9 "${p#/proc/}" 2>/dev/null
  done
  rm -f "$mntns_file"
  for m in dev/pts dev sys proc ''; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  return 0
}
trap cleanup EXIT
cleanup
# Never remove a tree that still has the host's /dev or /proc mounted in it.
if grep -q " $root[/ ]" /proc/mounts; then echo "fresh-machine: $root still has mounts; unmount them first" >&2; exit 1; fi
rm -rf "$root"
cp -a "$base" "$root"

# Node and npm exactly as installed here (binary, npm, global npmrc), nothing else of it:
# no headers (/usr/include/node), no corepack, no ~/.npmrc.
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
prefix=$(dirname "$(dirname "$node_bin")")
install -D -m 0755 "$node_bin" "$root$prefix/bin/node"
mkdir -p "$root$(dirname "$npm_dir")"
cp -a "$npm_dir" "$root$npm_dir"
ln -sf "$npm_dir/bin/npm-cli.js" "$root$prefix/bin/npm"
ln -sf "$npm_dir/bin/npx-cli.js" "$root$prefix/bin/npx"
[ -f "$prefix/etc/npmrc" ] && install -D -m 0644 "$prefix/etc/npmrc" "$root$prefix/etc/npmrc"
# NPM_VERSION=10 tries another npm (e.g. the one Node 20 ships) in place of this machine's.
if [ -n "${NPM_VERSION:-}" ]; then
  tarball=$(cd "$work" && npm pack --silent "npm@$NPM_VERSION")
  rm -rf "${root:?}$npm_dir" && mkdir -p "$root$npm_dir"
  tar -xzf "$work/$tarball" -C "$root$npm_dir" --strip-components=1 && rm -f "$work/$tarball"
fi
# This workplace reaches the registries through a TLS-intercepting proxy: its CA bundle
# and DNS come along (the network, not the machine's software).
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/ssl/certs/ca-certificates.crt ] && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# ...and its own CAs as local ones, so the bundle apt's ca-certificates rebuilds still has them.
for ca in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$ca" ] && install -D -m 0644 "$ca" "$root/usr/local/share/ca-certificates/$(basename "$ca")"
done

git clone -q --no-hardlinks "$repo" "$root/root/agentd"
git -C "$root/root/agentd" checkout -q "$(git -C "$repo" rev-parse HEAD)"

# The root must be a mount point, as on a real machine: bwrap and unshare --mount change
# the propagation of / and fail in a bare chroot directory.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
# /sys with its submounts (the cgroup hierarchies), as a booted machine has it.
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"  # so unmounting it here never reaches the host's
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"

echo "fresh-machine: $(chroot "$root" sh -c '. /etc/os-release; echo $PRETTY_NAME'), node $(chroot "$root" node --version), npm $(chroot "$root" npm --version)"
for tool in cc gcc g++ make python3 bwrap rg git psql initdb; do
  chroot "$root" sh -c "command -v $tool" >/dev/null && echo "fresh-machine: unexpected $tool in the chroot" >&2 && exit 1
done
[ -e "$root/usr/include/node" ] && echo "fresh-machine: unexpected Node headers" >&2 && exit 1
echo "fresh-machine: running as root in /root/agentd: $command"
start=$(date +%s)
set +e
# Not chroot(2) for the command itself: the kernel refuses a new user namespace (which
# every bwrap sandbox makes) to a chrooted process. A mount namespace whose root is the
# tree (pivot_root) is what a real machine looks like.
unshare --mount --fork -- sh -c '
  set -e
  readlink /proc/self/ns/mnt > "$2"
  mount --make-rprivate /
  cd "$1"
  mkdir -p .oldroot
  pivot_root . .oldroot
  umount -l /.oldroot
  rmdir /.oldroot
  exec env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb bash -c "cd /root/agentd && $3"
' sh "$root" "$mntns_file" "$command"
code=$?
set -e
echo "fresh-machine: '$command' exited $code after $(( $(date +%s) - start )) s"
exit $code
