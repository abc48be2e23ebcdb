#!/usr/bin/env bash
# Creates .venv (with uv) from a lock file when it is missing or out of step with that lock. Idempotent.
# Usage: scripts/bootstrap.sh         the runtime set, requirements.lock: what the pipeline needs to run
#                                     (`make demo`, `make up`, `make airflow`; the same set as the Airflow image)
#        scripts/bootstrap.sh --dev   the runtime set plus the test and development tools, requirements-dev.lock
#                                     (`make test`, `make venv`, `make lint`)
# A venv that holds the dev set keeps it when a runtime caller comes next: the dev lock pins every runtime package
# at its requirements.lock version (checked below), so `make demo` after `make test` does not uninstall pytest.
source "$(dirname "$0")/common.sh"

RUNTIME_LOCK="$ROOT/requirements.lock"
DEV_LOCK="$ROOT/requirements-dev.lock"
# The stamp of a lock is a copy of it, taken after the venv was synced to it: a lock that changed since differs.
stamp_of() { echo "$VENV/.installed-$(basename "$1")"; }
# Before the split, one lock held the dev tools too; a venv synced from it (stamp .lock-installed) is a dev venv.
LEGACY_STAMP="$VENV/.lock-installed"

case "${1:-}" in
  --dev) lock="$DEV_LOCK" ;;
  "")
    lock="$RUNTIME_LOCK"
    if [ -f "$(stamp_of "$DEV_LOCK")" ] || [ -f "$LEGACY_STAMP" ]; then lock="$DEV_LOCK"; fi
    ;;
  *) die "scripts/bootstrap.sh: unknown argument '$1'; usage: scripts/bootstrap.sh [--dev]" ;;
esac

if [ "$lock" = "$DEV_LOCK" ]; then
  pins() { grep -E '^[A-Za-z0-9]' "$1" | LC_ALL=C sort; }
  differ="$(LC_ALL=C comm -23 <(pins "$RUNTIME_LOCK") <(pins "$DEV_LOCK") | tr '\n' ' ')"
  [ -z "$differ" ] || die "requirements-dev.lock does not pin these packages as requirements.lock does: $differ
(one lock was changed without the other); run \`make lock\` to re-pin both."
fi

stamp="$(stamp_of "$lock")"
# Two callers at once (two `make up` on a fresh checkout) must not both create and sync .venv: the second waits,
# then finds the stamp current.
if ! { [ -f "$stamp" ] && cmp -s "$stamp" "$lock"; }; then hold_lock "$LOCAL/bootstrap.lock" "scripts/bootstrap.sh" 1800; fi
if [ -f "$stamp" ] && cmp -s "$stamp" "$lock"; then
  exit 0
fi
command -v python3.11 >/dev/null || command -v python3 >/dev/null || die "Python 3.11 is required (python3.11 not found)."
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  info "installing uv (the installer used for the lock files)"
  python3 -m pip install --quiet --disable-pip-version-check uv || die "could not pip install uv; check access to PyPI."
  UV="$(python3 -c 'import shutil,sys; print(shutil.which("uv") or "")')"
  [ -n "$UV" ] || UV="python3 -m uv"
fi
if [ ! -x "$VENV/bin/python" ]; then
  info "creating .venv (Python 3.11)"
  $UV venv --quiet --python 3.11 "$VENV"
fi
info "installing $(basename "$lock") into .venv"
VIRTUAL_ENV="$VENV" $UV pip sync --quiet "$lock" || die "uv pip sync of $(basename "$lock") failed; see the output above."
# One stamp at a time: the venv holds exactly the lock it was last synced to.
rm -f "$LEGACY_STAMP" "$(stamp_of "$RUNTIME_LOCK")" "$(stamp_of "$DEV_LOCK")"
cp "$lock" "$stamp"
