import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

from shopstream import alerts, dag_defaults


def _context(exc):
    ti = SimpleNamespace(dag_id="shopstream_bronze", task_id="load", map_index=2, run_id="r1", try_number=3,
                         log_url="http://localhost:8080/log")
    return {"ti": ti, "exception": exc, "logical_date": "2026-11-27T10:00:00+00:00"}


def test_alert_names_task_try_and_error(caplog):
    caplog.set_level("ERROR", logger="shopstream.alerts")
    alert = alerts.emit(_context(ValueError("broker down")), "task_failed")
    assert alert["dag_id"] == "shopstream_bronze" and alert["task_id"] == "load" and alert["map_index"] == 2
    assert alert["try_number"] == 3 and alert["error_type"] == "ValueError" and alert["error"] == "broker down"
    line = next(r.getMessage() for r in caplog.records if "SHOPSTREAM_ALERT" in r.getMessage())
    assert json.loads(line.split(" ", 1)[1])["event"] == "task_failed"


def test_webhook_receives_alert_and_a_dead_webhook_does_not_raise(monkeypatch):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hook")
    alerts.on_failure(_context(RuntimeError("x")))
    server.server_close()
    assert received and received[0]["task_id"] == "load" and received[0]["event"] == "task_failed"
    # Nothing listens now: the alert is logged, the callback does not raise.
    alerts.on_retry(_context(RuntimeError("y")))


def test_default_args_retry_with_backoff():
    args = dag_defaults.default_args()
    assert args["owner"] == "shopstream" and args["retries"] >= 2
    assert args["retry_exponential_backoff"] >= 2 and args["retry_delay"].total_seconds() > 0
    assert args["on_failure_callback"] is alerts.on_failure
