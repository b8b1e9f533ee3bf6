#!/usr/bin/env bash
# Provide a real Kubernetes API server for tests/kubernetes/: etcd from Debian's
# etcd-server package and kube-apiserver v1.20.2 built from Debian's `kubernetes`
# source package (every Go dependency is vendored there, so the build needs no
# network beyond the Debian archive). Only the finished binary is cached; a cold
# build takes about five minutes on two cores, a warm run returns at once.
#
# Usage: 60-kube-apiserver.sh demo|test   (the demo needs no API server: it skips)
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file while a
# build is under way cannot change what that build executes.
main() {

mode="${1:-test}"
if [[ "$mode" == demo ]]; then
    exit 0
fi

VERSION=v1.20.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/kube"
BIN="$CACHE/kube-apiserver-$VERSION"
GO_PKG=golang-1.19-go
GOROOT_DIR=/usr/lib/go-1.19

log() { echo "[kube-apiserver] $*" >&2; }

. "${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/scripts/lib/apt.sh"

ensure_packages() {
    local missing
    missing=$(apt_missing "$@")
    [[ -z "$missing" ]] && return 0
    log "installing: $missing"
    # shellcheck disable=SC2086  # one word per package
    apt_install $missing
}

ensure_source_index() {
    if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
        return 0
    fi
    log "enabling Debian source packages (deb-src) to fetch the kubernetes source"
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    as_root tee /etc/apt/sources.list.d/debian-src.sources >/dev/null <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt_get update -q
}

# etcd is always needed next to the API server, even when the binary is cached.
ensure_packages etcd-server

built() { [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; }
built && exit 0

# One build at a time on a machine: a second run waits for the first and then
# finds the binary there.
mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi
built && exit 0

ensure_packages "$GO_PKG" dpkg-dev
ensure_source_index

WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "fetching the kubernetes source package"
(cd "$WORK" && apt-get source -q kubernetes >"$WORK/source.log" 2>&1) \
    || { cat "$WORK/source.log" >&2; exit 1; }
SRC=$(find "$WORK" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[[ -n "$SRC" ]] || { log "apt-get source gave no kubernetes-* directory"; exit 1; }

# Upstream 1.20 builds in GOPATH mode: k8s.io/kubernetes must sit inside a GOPATH,
# and vendor/k8s.io/* are symlinks into staging/.
export GOPATH="$WORK/go"
export GOCACHE="$WORK/go-cache"
export GO111MODULE=off
export GOFLAGS=
export CGO_ENABLED=0
export PATH="$GOROOT_DIR/bin:$PATH"
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

log "building openapi-gen from the vendored kube-openapi"
go build -o "$WORK/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen

# The same package list upstream's Makefile.generated_files derives: every directory
# with a +k8s:openapi-gen tag, staging/src seen as vendor/, without code-generator
# and sample-apiserver.
inputs=$(
    find -H . \( -path ./_\* -o -path ./.\* -o -path ./vendor \) -prune -o \
        -type f -name '*.go' -print \
    | sed 's|^\./staging/src|vendor|; s|^\./||' \
    | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
    | sed 's|^vendor/|staging/src/|' \
    | xargs grep --color=never -l '^// *+k8s:' \
    | xargs grep --color=never -l '+k8s:openapi-gen=' \
    | sed 's|^staging/src/|vendor/|' \
    | xargs -n1 dirname | LC_ALL=C sort -u \
    | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -
)
[[ -n "$inputs" ]] || { log "found no +k8s:openapi-gen packages"; exit 1; }

log "generating pkg/generated/openapi/zz_generated.openapi.go"
"$WORK/openapi-gen" \
    --logtostderr \
    -i "$inputs" \
    -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi \
    -o "$GOPATH/src" \
    -h hack/boilerplate/boilerplate.generatego.txt \
    -r "$WORK/api-violations.report"
[[ -s pkg/generated/openapi/zz_generated.openapi.go ]] \
    || { log "openapi-gen wrote no zz_generated.openapi.go"; exit 1; }

log "building kube-apiserver $VERSION (several minutes on a cold machine)"
vpkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=20"
ldflags="$ldflags -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
go build -ldflags "$ldflags" -o "$WORK/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

"$WORK/kube-apiserver" --version | grep -q "$VERSION" \
    || { log "the built binary does not report $VERSION"; exit 1; }
install -m 0755 "$WORK/kube-apiserver" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
log "ready: $BIN"
}

main "$@"
