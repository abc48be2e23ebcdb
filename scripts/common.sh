# Sourced by the scripts in this folder: paths, .env, helpers. Not meant to be run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"
mkdir -p "$LOCAL"

die()  { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*" >&2; }

# .env: created from .env.example on first use, each `change-me` replaced by its own random secret.
if [ ! -f "$ROOT/.env" ]; then
  python3 - "$ROOT" <<'PY'
import pathlib, secrets, sys
root = pathlib.Path(sys.argv[1])
text = (root / ".env.example").read_text()
while "change-me" in text:
    text = text.replace("change-me", secrets.token_urlsafe(18), 1)
(root / ".env").write_text(text)
PY
  chmod 600 "$ROOT/.env"
  info "created .env from .env.example with generated secrets"
fi

# Variables already set in the environment win over .env (so CI and tests can override a port).
_shopstream_load_env() {
  local line key
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key="${line%%=*}"
    if [ -z "${!key+x}" ]; then eval "export $line"; fi
  done < "$ROOT/.env"
}
_shopstream_load_env
eval "$(python3 "$ROOT/scripts/conn_env.py")"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$LOCAL/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export DBT_SEND_ANONYMOUS_USAGE_STATS=False
export SHOPSTREAM_ROOT="$ROOT"
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"

# PostgreSQL's files: .local/pg, unless we are root and the 'postgres' OS user (who runs the server, since
# initdb refuses root) cannot reach .local (e.g. a clone inside a mode-700 folder): then a folder of its own
# under /var/tmp, keyed by this checkout's path.
if [ -z "${SHOPSTREAM_PG_ROOT:-}" ]; then
  SHOPSTREAM_PG_ROOT="$LOCAL/pg"
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$LOCAL" 2>/dev/null; then
    SHOPSTREAM_PG_ROOT="/var/tmp/shopstream-pg-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
  fi
fi
export SHOPSTREAM_PG_ROOT

# port_owner PORT -> prints "pid/name" of the process listening on 127.0.0.1:PORT, empty if free.
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\"\([^\"]*\)\",pid=\([0-9]*\).*/\2\/\1/p' | head -1
}
port_in_use() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }
