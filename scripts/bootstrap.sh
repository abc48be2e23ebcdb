#!/usr/bin/env bash
# Creates .venv from requirements.lock (with uv) when it is missing or older than the lock. Idempotent.
source "$(dirname "$0")/common.sh"

stamp="$VENV/.lock-installed"
if [ -f "$stamp" ] && cmp -s "$stamp" "$ROOT/requirements.lock"; then
  exit 0
fi
command -v python3.11 >/dev/null || command -v python3 >/dev/null || die "Python 3.11 is required (python3.11 not found)."
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  info "installing uv (the installer used for the lock file)"
  python3 -m pip install --quiet --disable-pip-version-check uv || die "could not pip install uv; check access to PyPI."
  UV="$(python3 -c 'import shutil,sys; print(shutil.which("uv") or "")')"
  [ -n "$UV" ] || UV="python3 -m uv"
fi
if [ ! -x "$VENV/bin/python" ]; then
  info "creating .venv (Python 3.11)"
  $UV venv --quiet --python 3.11 "$VENV"
fi
info "installing requirements.lock into .venv"
VIRTUAL_ENV="$VENV" $UV pip sync --quiet "$ROOT/requirements.lock" || die "uv pip sync failed; see the output above."
cp "$ROOT/requirements.lock" "$stamp"
