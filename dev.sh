#!/usr/bin/env bash
# spinesim developer entry point: sets everything up (Debian packages, a virtualenv, the package),
# then runs what you ask for. Idempotent; safe to run on a fresh machine as root.
#   ./dev.sh run     start the trainee simulator on the built-in anatomy and the default scenario
#   ./dev.sh test    run the full test suite
#   ./dev.sh bench   run the benchmarks (benchmarks/README.md)
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(dcmtk dicom3tools plastimatch libegl1 libgl1-mesa-dri chromium)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

setup_system() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
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

setup_python() {
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    # Reinstall only when the project's requirements changed since the last install.
    if [ ! -f .venv/.setup-stamp ] || [ pyproject.toml -nt .venv/.setup-stamp ]; then
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e ".[test]"
        touch .venv/.setup-stamp
    fi
}

setup() {
    setup_system
    setup_python
    export VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    run)   setup; exec .venv/bin/spinesim serve "$@" ;;
    test)  setup; exec .venv/bin/python -m pytest -n 2 "$@" ;;
    bench) setup; exec .venv/bin/python -m benchmarks "$@" ;;
    *)     echo "usage: ./dev.sh run|test|bench [args]" >&2; exit 2 ;;
esac
