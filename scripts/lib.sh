# Shared by scripts/demo.sh and scripts/test.sh (sourced, not run).
# Both use the same build tree and options, so switching between them never
# rebuilds anything.

petal_start=$(date +%s)
petal_step() { echo; echo "==> [$(( $(date +%s) - petal_start ))s] $*"; }

# petal_configure BUILD_DIR [extra cmake args...]
petal_configure() {
  local dir="$1"; shift
  local log="$dir.configure.log"
  if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPETAL_WERROR=ON \
      -DPETAL_WITH_TORCH=ON -DPETAL_INTEROP_TESTS=ON -DPETAL_PYTHON="$PWD/.venv/bin/python" \
      "$@" > "$log" 2>&1; then
    cat "$log"
    echo "cmake configure failed (log: $log)" >&2
    return 1
  fi
}
