#!/usr/bin/env bash
# Tools for the deployment checks, which run without Docker or a cluster:
#   kustomize (renders deploy/k8s), docker-compose (validates the compose
#   file), and a Python venv with kubernetes-validate (Kubernetes schemas),
#   PyYAML and pytest. Installed once per machine, outside the repository.
#
#   bash tests/deploy/tools.sh install      # install what is missing
#   bash tests/deploy/tools.sh env          # print the paths as shell variables
#   bash tests/deploy/tools.sh pytest ARGS  # run pytest in the tools' venv
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KUSTOMIZE_VERSION=v5.5.0
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.3
PYTEST_VERSION=8.3.5

# Same per-machine cache as deploy/stack.sh, so one clone's install serves all.
if [ -w /var/cache ] || [ -w /var/cache/transit-graph ]; then
  TOOL_CACHE=${TOOL_CACHE:-/var/cache/transit-graph}
else
  TOOL_CACHE=${TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/transit-graph}
fi
KUSTOMIZE=$TOOL_CACHE/bin/kustomize-$KUSTOMIZE_VERSION
KUSTOMIZE_KUBECTL=$TOOL_CACHE/bin/kustomize-kubectl   # fallback without Go
VENV=$TOOL_CACHE/deploy-venv-$KUBERNETES_VALIDATE_VERSION

log() { echo "deploy-tools: $*" >&2; }
die() { echo "deploy-tools: ERROR: $*" >&2; exit 1; }

install_kustomize() {
  [ -x "$KUSTOMIZE" ] && return 0
  if ! command -v go >/dev/null; then
    # No Go toolchain: kubectl embeds kustomize; `kustomize build` = `kubectl kustomize`.
    command -v kubectl >/dev/null || die "go (>= 1.22) or kubectl is needed for kustomize"
    log "no go: using kubectl's embedded kustomize"
    mkdir -p "$TOOL_CACHE/bin"
    printf '#!/bin/sh\n[ "$1" = build ] && shift\nexec kubectl kustomize "$@"\n' >"$KUSTOMIZE_KUBECTL"
    chmod +x "$KUSTOMIZE_KUBECTL"
    return 0
  fi
  log "installing kustomize $KUSTOMIZE_VERSION from the Go module proxy"
  local gobin; gobin=$(mktemp -d)
  GOBIN=$gobin GOFLAGS=-buildvcs=false go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mkdir -p "$TOOL_CACHE/bin"
  mv "$gobin/kustomize" "$KUSTOMIZE"
  rmdir "$gobin"
}

install_compose() {
  command -v docker-compose >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "docker-compose is missing: sudo apt-get install --no-install-recommends docker-compose"
  log "installing Debian's docker-compose (without the Docker engine it recommends)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends docker-compose >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends docker-compose >/dev/null; }
}

install_venv() {
  [ -x "$VENV/bin/kubernetes-validate" ] && return 0
  log "creating $VENV with kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION" \
    "pytest==$PYTEST_VERSION"
}

print_env() {
  if [ -x "$KUSTOMIZE" ]; then echo "KUSTOMIZE=$KUSTOMIZE"; else echo "KUSTOMIZE=$KUSTOMIZE_KUBECTL"; fi
  echo "DOCKER_COMPOSE=$(command -v docker-compose || echo docker-compose)"
  echo "DEPLOY_VENV=$VENV"
}

case "${1:-}" in
  install)
    install_kustomize
    install_compose
    install_venv
    log "ready: $(print_env | sed -n 's/^KUSTOMIZE=//p'), docker-compose" \
        "$(docker-compose version --short 2>/dev/null), kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    ;;
  env) print_env ;;
  pytest)
    shift
    [ -x "$VENV/bin/python" ] || die "tools missing: run bash tests/deploy/tools.sh install"
    eval "$(print_env | sed 's/^/export /')"
    export TG_SOURCE_DIR=${TG_SOURCE_DIR:-$ROOT}
    cd "$ROOT"
    exec "$VENV/bin/python" -m pytest -q --no-header -p no:cacheprovider "$@"
    ;;
  *) echo "usage: $0 install|env|pytest ARGS" >&2; exit 2 ;;
esac
