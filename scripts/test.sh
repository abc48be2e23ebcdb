#!/usr/bin/env bash
# The README's test command (`make test`): venv from the dev lock (runtime + test tools), real services, the whole
# pytest suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" tests/unit
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/bootstrap.sh" --dev
"$ROOT/scripts/postgres.sh" start
"$ROOT/scripts/kafka.sh" start
cd "$ROOT"
# The docker-compose test validates the file with the real `docker compose config`; install the plugin when
# missing (built from the Go module proxy: ~5 min once per machine, then cached).
export SHOPSTREAM_INSTALL_COMPOSE="${SHOPSTREAM_INSTALL_COMPOSE:-1}"
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a broken run, never a green one.
if [ "$rc" = 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit "$rc"
