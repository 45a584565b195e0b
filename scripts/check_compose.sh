#!/usr/bin/env bash
# Validate docker-compose.yml without a Docker engine: `docker-compose config` parses the file,
# checks it against the Compose schema and resolves its anchors and variables, all offline.
# Installs Debian's docker-compose (1.29) when none is on PATH, and also asks the Compose v2
# plugin (`docker compose config`) when there is one. Exits 0 only when every one accepts the file.
#
#   scripts/check_compose.sh [FILE]     (default: the repository's docker-compose.yml)
set -euo pipefail
compose_file="$(realpath "${1:-$(dirname "$0")/../docker-compose.yml}")"

if ! command -v docker-compose >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "check_compose: no docker-compose and no apt-get to install it with" >&2
        exit 2
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "check_compose: installing docker-compose needs root" >&2; exit 2; }
        sudo="sudo -n"
    fi
    echo "check_compose: installing Debian's docker-compose" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt run (a browser install, say) rather than fail on its lock. No recommends:
    # the Docker engine (docker.io) is not needed to validate a file.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
    $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends docker-compose >/dev/null
fi

docker-compose -f "$compose_file" config -q
echo "check_compose: docker-compose $(docker-compose version --short) accepts $compose_file"

if docker compose version >/dev/null 2>&1; then
    docker compose -f "$compose_file" config -q
    echo "check_compose: docker compose $(docker compose version --short) accepts $compose_file"
fi
