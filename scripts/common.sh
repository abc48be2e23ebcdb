# Sourced by the scripts in this folder: paths, .env, helpers. Not meant to be run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"
mkdir -p "$LOCAL"

die()  { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*" >&2; }

# .env: created from .env.example on first use; on every later use, variables that .env.example gained since
# (e.g. new connections) are appended to .env with their comments. Each `change-me` in a value (never in a
# comment) becomes its own random secret; values already in .env are never changed. Also repairs comment lines
# that an older generator had filled with a secret instead of the word `change-me`.
python3 - "$ROOT" <<'PY' || die "could not create or update .env from .env.example"
import fcntl, json, os, pathlib, re, secrets, sys

PLACEHOLDER = "change-me"
root = pathlib.Path(sys.argv[1])
example_path, env_path = root / ".env.example", root / ".env"
VAR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def fill(line: str) -> str:
    """Replace each placeholder in a variable line's value by a fresh secret (comments stay as they are)."""
    if not VAR.match(line):
        return line
    key, _, value = line.partition("=")
    while PLACEHOLDER in value:
        value = value.replace(PLACEHOLDER, secrets.token_urlsafe(18), 1)
    return f"{key}={value}"


def same_server(line: str, env_lines: list) -> str:
    """A PostgreSQL connection added to an existing .env points at the server and database of its
    AIRFLOW_CONN_WAREHOUSE_DB (host, port, schema and TLS extra), not at .env.example's defaults."""
    key, _, value = line.partition("=")
    if not key.startswith("AIRFLOW_CONN_"):
        return line
    try:
        conn = json.loads(value.strip("'"))
        warehouse = next(json.loads(l.partition("=")[2].strip("'")) for l in env_lines
                         if l.startswith("AIRFLOW_CONN_WAREHOUSE_DB="))
    except (StopIteration, ValueError):
        return line
    if not (isinstance(conn, dict) and conn.get("conn_type") == "postgres" and isinstance(warehouse, dict)):
        return line
    for field in ("host", "port", "schema", "extra"):
        if field in warehouse:
            conn[field] = warehouse[field]
    return f"{key}='{json.dumps(conn, separators=(',', ':'))}'"


example = example_path.read_text().splitlines()
with open(root / ".local" / ".env.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent shells must not both append
    if not env_path.exists():
        text = "\n".join(fill(line) for line in example) + "\n"
        created, added, repaired = True, [], 0
    else:
        created = False
        lines = env_path.read_text().splitlines()
        # Repair comments an older generator damaged: an example comment with the placeholder whose copy in .env
        # holds a generated token in its place.
        repaired = 0
        damaged = {}
        for line in example:
            if line.startswith("#") and PLACEHOLDER in line:
                parts = [re.escape(p) for p in line.split(PLACEHOLDER)]
                damaged[line] = re.compile("^" + r"[A-Za-z0-9_-]{16,}".join(parts) + "$")
        for i, line in enumerate(lines):
            if line.startswith("#") and PLACEHOLDER not in line:
                for good, pattern in damaged.items():
                    if pattern.match(line):
                        lines[i], repaired = good, repaired + 1
                        break
        # The header comment (the comment lines before the first variable): when a line of it holds a generated
        # token in backquotes, take the example's header instead (.env.example's wording may have changed).
        def header(ls):
            out = []
            for line in ls:
                if not line.startswith("#"):
                    break
                out.append(line)
            return out
        env_header, example_header = header(lines), header(example)
        token = re.compile(r"`[A-Za-z0-9_-]{24}`")
        if env_header != example_header and any(token.search(line) for line in env_header):
            lines[:len(env_header)] = example_header
            repaired += len(env_header)
        present = {m.group(1) for m in map(VAR.match, lines) if m}
        added, block = [], []
        for line in example:
            if line.startswith("#"):
                block.append(line)
                continue
            m = VAR.match(line)
            if m and m.group(1) not in present:
                if not added:
                    lines += ["", "# --- Added from .env.example by scripts/common.sh ---"]
                if block and block[0].startswith("# ---"):
                    lines.append("")
                lines += block + [same_server(fill(line), lines)]
                added.append(m.group(1))
            block = [] if not line.startswith("#") else block
        text = "\n".join(lines) + "\n"
    if created or added or repaired:
        tmp = env_path.with_name(".env.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, env_path)
    if created:
        print("==> created .env from .env.example with generated secrets", file=sys.stderr)
    if added:
        print(f"==> added to .env from .env.example (secrets generated): {', '.join(added)}", file=sys.stderr)
    if repaired:
        print(f"==> repaired {repaired} comment line(s) of .env that held a generated secret", file=sys.stderr)
PY

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
# Cosmos reads Airflow's [openlineage] namespace when it is imported; without it Airflow logs "section/key
# [openlineage/namespace] not found in config" in every process that imports Cosmos (.env.example).
export AIRFLOW__OPENLINEAGE__NAMESPACE="${AIRFLOW__OPENLINEAGE__NAMESPACE:-shopstream}"
# The dbt docs in the UI (Browse -> dbt Docs, served at /cosmos/shopstream/ by Cosmos' plugin behind
# the Airflow login, plugins/shopstream_ui.py): the DAG shopstream_dbt_docs (and `make demo`) write them into this
# folder, read from the same setting. Empty = $AIRFLOW_HOME/dbt_docs/shopstream, so every AIRFLOW_HOME has its own.
if [ -z "${AIRFLOW__COSMOS__DBT_DOCS_PROJECTS:-}" ]; then
  # JSON-encoded by Python: a checkout path with `"` or `\` stays valid JSON.
  AIRFLOW__COSMOS__DBT_DOCS_PROJECTS="$(python3 -c 'import json, sys
print(json.dumps({"shopstream": {"dir": sys.argv[1], "name": "dbt Docs (ShopStream), new tab"}}))' \
    "$AIRFLOW_HOME/dbt_docs/shopstream")"
fi
export AIRFLOW__COSMOS__DBT_DOCS_PROJECTS
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

# command_line PID -> the process's arguments separated by spaces; nothing (and false) when there is no such process.
command_line() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# daemon_pid PIDFILE PORT IS_OURS -> the pid of a daemon this project started (empty when it is not running): the pid
# in PIDFILE when the function IS_OURS accepts it (IS_OURS PID: is this live process our daemon?); otherwise a stale
# PIDFILE is removed, and a daemon of ours that lost its pid file is adopted (found as the owner of PORT, written back
# to PIDFILE). dummyjson.sh and kafka.sh find their servers with it.
daemon_pid() {
  local pidfile="$1" port="$2" is_ours="$3" pid="" owner
  [ -f "$pidfile" ] && pid="$(tr -dc '0-9' <"$pidfile")"
  if [ -n "$pid" ] && "$is_ours" "$pid"; then echo "$pid"; return; fi
  if [ -f "$pidfile" ]; then
    info "removing stale pid file $pidfile (process ${pid:-?} is gone)"
    rm -f "$pidfile"
  fi
  owner="$(port_owner "$port")"; owner="${owner%%/*}"
  if [ -n "$owner" ] && "$is_ours" "$owner"; then
    echo "$owner" >"$pidfile"
    echo "$owner"
  fi
}

# hold_lock FILE WHAT [SECONDS]: an exclusive lock on FILE (fd 8) until this script exits, waiting (default 300 s,
# or SHOPSTREAM_LOCK_TIMEOUT) for another script that holds it: two starts at once (two `make up`, `make demo`
# while a test starts the services) run one after the other, and the second finds the service up. A daemon the
# script starts must not inherit fd 8 (start it with `8>&-`), or it would hold the lock for as long as it runs.
hold_lock() {
  local wait="${3:-${SHOPSTREAM_LOCK_TIMEOUT:-300}}"
  exec 8>>"$1"
  flock -w "$wait" 8 \
    || die "another $2 has held the lock $1 for more than $wait s (is it stuck? see its pid with: fuser '$1')"
}

# sh_quote STRING -> STRING single-quoted for /bin/sh (for the few commands, like pg_ctl -o, that hand a string
# to a shell: a checkout path with spaces, quotes or `$` must reach the program unchanged).
sh_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
