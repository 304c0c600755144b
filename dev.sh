#!/usr/bin/env bash
# spinesim developer entry point: sets everything up (Debian packages, a virtualenv, the package),
# then runs what you ask for. Idempotent; safe to run on a fresh machine as root.
#   ./dev.sh run     start the trainee simulator on the built-in anatomy and the default scenario
#   ./dev.sh test    run the full test suite
#   ./dev.sh bench   run the benchmarks (benchmarks/README.md)
# Each command installs only what it needs: `run` the runtime, `test` and `bench` also the test extra
# and the tools the tests and benchmarks call. Python packages come at the versions in constraints.txt.
set -euo pipefail
cd "$(dirname "$0")"

# VTK renders offscreen through EGL (Mesa's software rasteriser): the 3D views and reports.
RUN_APT_PACKAGES=(libegl1 libgl1-mesa-dri)
# dcmtk (dcmcjpeg, dcmcjpls, dcmcrle, dcmdump) and dicom3tools (dciodvfy) for the DICOM tests,
# chromium for the browser tests (Playwright drives Debian's build), postgresql for the store's tests on a
# PostgreSQL server (tests/frontends/postgres.py starts a throwaway one; Debian's package starts none),
# strace for the store's fault injection (tests/frontends/test_store_faults.py fails a write at each step).
TEST_APT_PACKAGES=(dcmtk dicom3tools chromium postgresql strace)
# Plastimatch: the DRR benchmark's reference.
BENCH_APT_PACKAGES=(plastimatch)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

setup_system() {
    local missing=()
    # Debian's Python makes virtualenvs only with its -venv package (ensurepip): python3.11-venv.
    "$PYTHON" -c "import ensurepip" 2>/dev/null || missing+=("$(basename "$PYTHON")-venv")
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "dev.sh: installing Debian packages: ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# setup_python SET TARGET: install TARGET ("." or ".[test]") into .venv, once per SET until
# pyproject.toml or constraints.txt changes (a run-only .venv later used for tests gets the test extra).
setup_python() {
    local stamp=".venv/.setup-stamp-$1"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -c constraints.txt -e "$2"
        touch "$stamp"
    fi
}

setup_run() {
    setup_system "${RUN_APT_PACKAGES[@]}"
    setup_python run .
    export VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow
}

setup_test() {
    setup_system "${RUN_APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}" "$@"
    setup_python test ".[test]"
    export VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    run)   setup_run; exec .venv/bin/spinesim serve "$@" ;;
    test)  setup_test; exec .venv/bin/python -m pytest -n 2 "$@" ;;
    bench) setup_test "${BENCH_APT_PACKAGES[@]}"; exec .venv/bin/python -m benchmarks "$@" ;;
    *)     echo "usage: ./dev.sh run|test|bench [args]" >&2; exit 2 ;;
esac
