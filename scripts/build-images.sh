#!/usr/bin/env bash
# Build the three images of jupyterhub-spaces (hub, workbench, sandbox) from this
# checkout and push them to a registry you name.
#
#   scripts/build-images.sh --registry registry.example.org/team [options]
#   make images REGISTRY=registry.example.org/team [TAG=...] [RSTUDIO_DEB_URL=...]
#
# Options:
#   --registry PREFIX     where the images go (required), e.g. ghcr.io/acme or
#                         registry.example.org:5000/data; log in first (docker login)
#   --tag TAG             image tag (default: the chart's appVersion)
#   --rstudio-deb URL     RStudio Server .deb for Debian 12, built into the session
#                         images (default: none; the RStudio tool is then missing)
#   --platform PLATFORM   e.g. linux/amd64 (default: the engine's own)
#   --no-push             build and tag only
#   --dry-run             print the commands, run nothing (no engine needed)
#
# The engine is `docker` (set $DOCKER to another docker-compatible client, e.g.
# podman). At the end the script prints the chart values that name the pushed images.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/jupyterhub-spaces/Chart.yaml"
DOCKER="${DOCKER:-docker}"
# image name (as the chart's values name it) and Dockerfile of each image
IMAGES=(hub workbench sandbox)

die() { echo "build-images: $*" >&2; exit 2; }

registry="" tag="" rstudio="" platform="" push=1 dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="${2:-}"; shift 2 ;;
    --registry=*) registry="${1#*=}"; shift ;;
    --tag) tag="${2:-}"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --rstudio-deb) rstudio="${2:-}"; shift 2 ;;
    --rstudio-deb=*) rstudio="${1#*=}"; shift ;;
    --platform) platform="${2:-}"; shift 2 ;;
    --platform=*) platform="${1#*=}"; shift ;;
    --no-push) push=0; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

registry="${registry%/}"
[ -n "$registry" ] || die "--registry is required: the registry (and path) the cluster pulls from, e.g. --registry ghcr.io/acme (make images REGISTRY=ghcr.io/acme)"
[[ "$registry" =~ ^[A-Za-z0-9._:/-]+$ ]] || die "--registry '$registry' is not a registry path like ghcr.io/acme"
if [ -z "$tag" ]; then
  tag="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$CHART")"
  [ -n "$tag" ] || die "no appVersion in $CHART: give --tag"
fi
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "--tag '$tag' is not a valid image tag"

run() {
  echo "$*"
  [ "$dry" = 1 ] || "$@"
}

if [ "$dry" = 0 ]; then
  command -v "$DOCKER" >/dev/null 2>&1 \
    || die "'$DOCKER' is not installed: building images needs a Docker engine (or set \$DOCKER to a compatible client such as podman); --dry-run prints the commands"
  "$DOCKER" info >/dev/null 2>&1 \
    || die "no container engine answers ('$DOCKER info' failed): start the Docker daemon, or run this on a machine with one; --dry-run prints the commands"
fi

cd "$ROOT"
for image in "${IMAGES[@]}"; do
  ref="$registry/jupyterhub-spaces/$image:$tag"
  args=(build -f "images/$image/Dockerfile" -t "$ref")
  [ -z "$platform" ] || args+=(--platform "$platform")
  if [ "$image" != hub ] && [ -n "$rstudio" ]; then
    args+=(--build-arg "RSTUDIO_DEB_URL=$rstudio")
  fi
  run "$DOCKER" "${args[@]}" .
done
if [ "$push" = 1 ]; then
  for image in "${IMAGES[@]}"; do
    run "$DOCKER" push "$registry/jupyterhub-spaces/$image:$tag"
  done
fi

cat <<EOF

# Chart values naming these images (add them to your values file):
jupyterhub:
  hub:
    image: {name: $registry/jupyterhub-spaces/hub, tag: "$tag"}
  singleuser:
    image: {name: $registry/jupyterhub-spaces/workbench, tag: "$tag"}
sessions:
  workbench:
    image: {name: $registry/jupyterhub-spaces/workbench, tag: "$tag"}
  sandbox:
    image: {name: $registry/jupyterhub-spaces/sandbox, tag: "$tag"}
EOF
