#!/usr/bin/env bash
# `make images`: the three service images from the one Dockerfile, into the local engine:
#   flokraft-query-api:local  flokraft-rerun-api:local  flokraft-analyzer:local
# REGISTRY_BASE=1 builds them from the Dockerfile's defaults (the official python and uv
# images, for machines that reach registries). Otherwise (the default here) no registry is
# needed: the base is Debian's own packages (scripts/debian-base.sh, then Debian's python3
# on top: local/python:bookworm), and uv comes from its PyPI wheel (local/uv:<version>), the
# version the Dockerfile names. EXTRA_CA_BUNDLE (default: the machine's CA bundle when it
# exists) goes to the build as the `extra-ca` secret, for TLS-inspecting proxies; it is
# only mounted while uv downloads, never stored in an image.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}
export DOCKER DOCKER_BUILDKIT=1
TAG=${IMAGE_TAG:-local}
started=$(date +%s)

bash scripts/container-engine.sh

build_args=()
secret=()
ca=${EXTRA_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
if [ -n "$ca" ] && [ -s "$ca" ]; then
  secret=(--secret "id=extra-ca,src=$ca")
fi

if [ -z "${REGISTRY_BASE:-}" ]; then
  uv_version=$(sed -nE 's/^ARG UV_IMAGE=.*:([0-9][0-9.]*)$/\1/p' Dockerfile)
  [ -n "$uv_version" ] || { echo "no uv version in the Dockerfile's UV_IMAGE" >&2; exit 1; }
  bash scripts/debian-base.sh local/debian:bookworm
  if ! "$DOCKER" image inspect local/python:bookworm >/dev/null 2>&1; then
    # Debian's python3 (3.11 on bookworm) and CA certificates; no compilers, no apt lists.
    "$DOCKER" build --quiet --network host -t local/python:bookworm - >/dev/null <<'DOCKERFILE'
FROM local/debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python
DOCKERFILE
  fi
  if ! "$DOCKER" image inspect "local/uv:$uv_version" >/dev/null 2>&1; then
    # The uv binary out of its PyPI wheel, alone in an image (as ghcr.io/astral-sh/uv is).
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux_2_17_x86_64 --dest "$work" "uv==$uv_version"
    python3 - "$work" <<'PY'
import sys, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
(wheel,) = work.glob("uv-*.whl")
with zipfile.ZipFile(wheel) as archive:
    (name,) = [n for n in archive.namelist() if n.endswith(".data/scripts/uv")]
    (work / "uv").write_bytes(archive.read(name))
(work / "uv").chmod(0o755)
PY
    printf 'FROM scratch\nCOPY uv /uv\n' | "$DOCKER" build --quiet -t "local/uv:$uv_version" -f - "$work" >/dev/null
  fi
  build_args=(--build-arg PYTHON_IMAGE=local/python:bookworm --build-arg "UV_IMAGE=local/uv:$uv_version")
fi

# The same build arguments skaffold.yaml passes.
declare -A modules=([query-api]=query_api [rerun-api]=rerun_api [analyzer]=analyzer)
declare -A ports=([query-api]=8001 [rerun-api]=8002 [analyzer]=8003)
for service in query-api rerun-api analyzer; do
  t0=$(date +%s)
  "$DOCKER" build --network host --quiet "${build_args[@]}" "${secret[@]}" \
    --build-arg "SERVICE=$service" --build-arg "MODULE=${modules[$service]}" \
    --build-arg "PORT=${ports[$service]}" \
    -t "flokraft-$service:$TAG" . >/dev/null
  echo "built flokraft-$service:$TAG in $(( $(date +%s) - t0 )) s"
done
for service in query-api rerun-api analyzer; do
  "$DOCKER" image inspect --format "{{index .RepoTags 0}}  {{.Size}}" "flokraft-$service:$TAG" \
    | awk '{printf "%-30s %4d MB\n", $1, $2 / 1000000}'
done
echo "images built in $(( $(date +%s) - started )) s"
