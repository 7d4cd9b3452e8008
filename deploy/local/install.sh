#!/usr/bin/env bash
# `make install`: Debian packages if missing, then the virtualenv with every Python dependency.
# Says what it is doing and how long each step took (the first run takes about a minute).
set -euo pipefail
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
ENSURE="${ENSURE:-deploy/ensure-packages.sh}"

started=$(date +%s)
step_started=$started
step() { step_started=$(date +%s); echo "[install] $*" ; }
took() { echo "[install]   done in $(( $(date +%s) - step_started )) s"; }

step "checking the Debian packages (postgresql) ..."
bash "$ENSURE"
took
step "creating the virtualenv $VENV ..."
"$PYTHON" -m venv "$VENV"
took
step "installing the Python dependencies into $VENV (about a minute the first time) ..."
"$VENV/bin/pip" install -q --upgrade pip
# Exact versions and hashes from the lock file (`make lock` regenerates it), then the project.
"$VENV/bin/pip" install -q --require-hashes -r requirements.lock
"$VENV/bin/pip" install -q --no-deps -e .
took
echo "[install] ready in $(( $(date +%s) - started )) s"
