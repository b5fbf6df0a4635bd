#!/usr/bin/env bash
# The pipeline image (deploy/Dockerfile) built without a Docker engine, with
# Debian's podman; what the `image` tests and a developer without Docker use.
#   bash deploy/image.sh install   # podman, buildah, runc, debootstrap (apt)
#   bash deploy/image.sh base      # debian:bookworm-slim from debootstrap, cached
#   bash deploy/image.sh build     # base, then transit-graph:<version> from the tree
#   bash deploy/image.sh env       # CONTAINERS_CONF and IMAGE for other podman calls
#
# The base is not pulled from a registry: debootstrap installs bookworm's
# minbase from the Debian mirror this machine's apt already uses, trims it as
# Docker's debian:bookworm-slim is trimmed, and `podman import` tags it
# debian:bookworm-slim, the name the Dockerfile starts from. The rootfs
# tarball is cached in $IMAGE_CACHE (default build/image), the image in
# podman's own storage; layers of `podman build` are cached there too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
IMAGE_CACHE=${IMAGE_CACHE:-$BUILD_DIR/image}
VERSION=$(sed -n 's/^project([^)]*VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
IMAGE=${IMAGE:-transit-graph:$VERSION}
BASE=docker.io/library/debian:bookworm-slim
SUITE=bookworm
# Bump when the recipe below changes: the cached rootfs is then made again.
BASE_RECIPE=2
BASE_TAR=$IMAGE_CACHE/debian-$SUITE-minbase-r$BASE_RECIPE.tar
# The base's history comment: another clone's base of the same recipe is
# taken as it is (and keeps its cached layers).
BASE_MARK="transit-graph base r$BASE_RECIPE: debootstrap $SUITE minbase"

APT_PKGS=(podman buildah runc debootstrap uidmap)

log() { echo "image: $*" >&2; }
die() { echo "image: ERROR: $*" >&2; exit 1; }

# deploy/stack.sh owns installing Debian packages (root, apt lock, update).
install_packages() {
  bash "$ROOT/deploy/stack.sh" apt "${APT_PKGS[@]}"
}

# The Debian mirrors of this machine's apt configuration (one-line
# sources.list and deb822 *.sources): apt_uri SUITE prints the URI of the
# first enabled `deb` entry for that suite, or nothing.
apt_uri() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk -v want="$1" '
    function has(list, word,   n, i, w) { n = split(list, w, /[ \t]+/); for (i = 1; i <= n; i++) if (w[i] == word) return 1; return 0 }
    function flush() {
      if (has(types, "deb") && has(suites, want) && tolower(enabled) != "no" && !found) { split(uris, u, /[ \t]+/); print u[1]; found = 1 }
      types = suites = uris = ""; enabled = "yes"
    }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^#/) next
      key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      if (key == "types") types = val; else if (key == "uris") uris = val
      else if (key == "suites") suites = val; else if (key == "enabled") enabled = val
      next
    }
    /^[ \t]*deb[ \t]/ { line = $0; gsub(/\[[^]]*\]/, "", line); split(line, w, /[ \t]+/)
      i = (w[1] == "") ? 2 : 1; if (w[i + 2] == want && !found) { print w[i + 1]; found = 1 } }
    END { flush() }' "${files[@]}" | sed 's#/*$##'
}

host_codename() { (. /etc/os-release && echo "${VERSION_CODENAME:-$SUITE}"); }

# The Debian archive: DEBIAN_MIRROR, else the host's entry for its own suite.
debian_mirror() {
  local mirror=${DEBIAN_MIRROR:-$(apt_uri "$(host_codename)")}
  [ -n "$mirror" ] || die "no 'deb' source for $(host_codename) in /etc/apt; set DEBIAN_MIRROR to a Debian mirror"
  echo "$mirror"
}

# The security archive: DEBIAN_SECURITY_MIRROR, else the host's entry for
# its suite's security updates (none: the base goes without them).
security_mirror() {
  echo "${DEBIAN_SECURITY_MIRROR:-$(apt_uri "$(host_codename)-security")}"
}

# Settings for every podman call of the project, in a file of its own (not
# /etc/containers): runc, the runtime of Docker and containerd (crun refuses
# hosts whose cgroup v2 hierarchy sits beside v1 controllers), and open-file
# and process limits within this shell's own: podman's rootful defaults
# (about a million) need CAP_SYS_RESOURCE, which sandboxes and CI runners
# often drop.
containers_conf() {
  local conf=$IMAGE_CACHE/containers.conf nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  mkdir -p "$IMAGE_CACHE"
  cat >"$conf.tmp" <<EOF
# Written by deploy/image.sh; CONTAINERS_CONF names it for podman.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=16384:16384"]

[engine]
runtime = "runc"
EOF
  mv "$conf.tmp" "$conf"
  export CONTAINERS_CONF=$conf
}

# What Docker's debian:bookworm-slim leaves out, kept out of every later
# apt-get install as well (its /etc/dpkg/dpkg.cfg.d/docker).
slim_rootfs() {
  local root=$1 mirror=$2 security=$3
  # apt sources as Docker's image has them (the suite, its updates and its
  # security updates), from the mirrors this machine uses.
  rm -f "$root/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$SUITE"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$root/etc/apt/sources.list.d/debian.sources"
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/etc/hostname "$root"/etc/resolv.conf
}

cmd_base() {
  containers_conf
  if podman image history --format '{{.Comment}}' "$BASE" 2>/dev/null | grep -qxF "$BASE_MARK"; then
    return 0
  fi
  if [ ! -s "$BASE_TAR" ]; then
    local mirror security root
    mirror=$(debian_mirror) security=$(security_mirror)
    command -v debootstrap >/dev/null || die "debootstrap is missing: bash deploy/image.sh install"
    root=$IMAGE_CACHE/rootfs.$$
    rm -rf "$IMAGE_CACHE"/rootfs.* "$IMAGE_CACHE"/debian-"$SUITE"-minbase*.tar
    log "debootstrap $SUITE (minbase) from $mirror"
    SECONDS=0
    debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$IMAGE_CACHE/debootstrap.log" 2>&1 ||
      { tail -n 30 "$IMAGE_CACHE/debootstrap.log" >&2; rm -rf "$root"; die "debootstrap failed"; }
    slim_rootfs "$root" "$mirror" "$security"
    tar --numeric-owner --xattrs -C "$root" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
    log "base rootfs in ${SECONDS}s: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
  fi
  # As Docker's image: PATH and a shell by default. Its apt sources name the
  # same mirrors, for the Dockerfile's apt-get.
  podman import --quiet --message "$BASE_MARK" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$BASE_TAR" "$BASE" >/dev/null
  log "imported $BASE"
}

# OCI labels: where the source lives (origin's URL without credentials) and
# which commit; "-dirty" when the tree differs from it.
revision() {
  local rev
  rev=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null) || { echo unknown; return 0; }
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev="$rev-dirty"
  echo "$rev"
}
source_url() {
  git -C "$ROOT" config --get remote.origin.url 2>/dev/null | sed -E 's#^([a-z+]+://)[^@/]*@#\1#' || true
}

cmd_build() {
  cmd_base
  log "building $IMAGE from $ROOT"
  SECONDS=0
  # --pull=never: the base is the imported one; host network for the build
  # stage's apt-get (no bridge or firewall set-up needed).
  # The labels go in as build arguments, as with Docker, and again as
  # --label: buildah's layer cache takes a LABEL step whose arguments
  # changed for the one it has, so a new commit would keep the old revision.
  local rev src arg args=()
  rev=$(revision) src=$(source_url)
  for arg in "version=$VERSION" "revision=$rev" "source=$src"; do
    args+=(--build-arg "$(tr a-z A-Z <<<"${arg%%=*}")=${arg#*=}" --label "org.opencontainers.image.$arg")
  done
  podman build --pull=never --network=host --layers \
    -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "${args[@]}" "$@" "$ROOT"
  log "built $IMAGE in ${SECONDS}s, $(podman image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{printf "%.0f MB", $1 / 1e6}')"
}

case "${1:-}" in
  install) install_packages ;;
  base) cmd_base ;;
  build) shift; cmd_build "$@" ;;
  mirror) debian_mirror ;;
  env) containers_conf; echo "export CONTAINERS_CONF=$CONTAINERS_CONF IMAGE=$IMAGE" ;;
  *) echo "usage: $0 install|base|build [podman build args]|mirror|env" >&2; exit 2 ;;
esac
