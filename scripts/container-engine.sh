#!/usr/bin/env bash
# A running Docker engine for `make images` and the container tests.
#   scripts/container-engine.sh          install (if missing) and start it; idempotent
#   scripts/container-engine.sh status   exit 0 when an engine answers, 1 otherwise
# Where `docker info` already answers (Docker Desktop, a CI runner's own engine), nothing
# is installed or started. Otherwise, as root: Debian's docker.io and debootstrap (the
# local base image is made with it) are installed when missing, and dockerd is started in
# the background with the cgroupfs driver (no systemd here) and overlay2; its log is
# .local/dockerd.log.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's client matches Debian's daemon (20.10) and has BuildKit built in; a newer client
# earlier in PATH may lack the buildx plugin BuildKit builds need.
docker_cli() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}
DOCKER=$(docker_cli)

answers() { "$DOCKER" info >/dev/null 2>&1; }

if [ "${1:-start}" = status ]; then
  answers
  exit $?
fi

if answers; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "no Docker engine answers and starting one needs root: start Docker yourself" >&2
  exit 1
fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  DOCKER=$(docker_cli)
fi

mkdir -p .local
started=$(date +%s)
# setsid: the daemon outlives this script and the make that ran it.
setsid dockerd --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
  >>.local/dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 120); do
  if answers; then
    echo "dockerd started in $(( $(date +%s) - started )) s (log: .local/dockerd.log)"
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer within 60 s; see .local/dockerd.log" >&2
tail -n 20 .local/dockerd.log >&2 || true
exit 1
