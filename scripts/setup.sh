#!/usr/bin/env bash
# Installs everything Petal needs on Debian 12, idempotently:
#   - Debian packages (build toolchain + the pinned C++ stack), only those missing;
#   - a Python venv at .venv with the pinned flwr for the interop tests
#     (skipped with --no-python; re-created only when the pins change).
# Safe to run any number of times. Uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

want_python=1
for arg in "$@"; do
  case "$arg" in
    --no-python) want_python=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libyaml-cpp-dev libgtest-dev libgmock-dev libtorch-dev libopenblas0-pthread
  libspdlog-dev libfmt-dev nlohmann-json3-dev libssl-dev zlib1g-dev libbenchmark-dev
  python3 python3-venv python3-yaml python3-torch
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "==> setup: Debian packages present"
fi

if [ "$want_python" -eq 1 ]; then
  req=scripts/requirements-interop.txt
  stamp=.venv/.petal-requirements.sha256
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "==> setup: Python venv .venv up to date ($(.venv/bin/python -c 'import flwr; print("flwr", flwr.__version__)'))"
  else
    echo "==> setup: creating Python venv .venv with $(grep -E '^[a-z]' "$req" | tr '\n' ' ')"
    rm -rf .venv
    # --system-site-packages lets the baselines import Debian's python3-torch.
    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
    echo "==> setup: $(.venv/bin/python -c 'import flwr, numpy; print("flwr", flwr.__version__, "numpy", numpy.__version__)')"
  fi
fi
