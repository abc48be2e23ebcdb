"""Small admin helper for scripts/kafka.sh (runs with the project venv's confluent-kafka).

    kafka_admin.py wait   BOOTSTRAP TIMEOUT_S PID   -> exit 0 once a metadata request succeeds,
                                                       1 on timeout, 2 if process PID died meanwhile
    kafka_admin.py topics BOOTSTRAP PARTITIONS NAME...  -> create the missing topics (replication 1)
    kafka_admin.py status BOOTSTRAP [NAME...]            -> print topic / partition counts; exit 1 if unreachable

Kept out of the shell script so one Python process does the whole polling loop (no interpreter start-up per
probe) and librdkafka's connection-refused chatter during start-up never reaches the terminal.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 2000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
        # librdkafka logs every refused connection while the broker boots; the caller reports failures.
        "log_level": 0,
        "logger": _Quiet(),
    })


class _Quiet:
    """A logging.Logger stand-in that drops librdkafka's log lines."""

    def log(self, *args, **kwargs) -> None:  # noqa: D401 - logger protocol
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def _listening(port: int) -> bool:
    """True when some socket LISTENs on `port` (from /proc/net/tcp*, without connecting)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def wait(bootstrap: str, timeout_s: float, pid: int) -> int:
    deadline = time.monotonic() + timeout_s
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    admin = None
    last = "no answer yet"
    while time.monotonic() < deadline:
        if pid and not _alive(pid):
            print(f"broker process {pid} exited during start-up", file=sys.stderr)
            return 2
        # The broker binds its listener only at the end of start-up. Connecting before that would hammer a
        # closed port inside the ephemeral range, and a retried connect can TCP-self-connect (source port ==
        # destination port), which then keeps the broker from binding it. So only connect once it listens.
        if not _listening(port):
            last = f"port {port} not listening yet"
            time.sleep(0.2)
            continue
        if admin is None:
            admin = _admin(bootstrap)
        try:
            md = admin.list_topics(timeout=2)
            if md.brokers:
                return 0
            last = "metadata has no brokers yet"
        except KafkaException as exc:
            last = str(exc.args[0]) if exc.args else repr(exc)
        time.sleep(0.3)
    print(f"no metadata answer from {bootstrap} within {timeout_s:.0f}s ({last})", file=sys.stderr)
    return 1


def ensure_topics(bootstrap: str, partitions: int, names: list[str]) -> int:
    admin = _admin(bootstrap)
    md = admin.list_topics(timeout=15)
    existing = md.topics
    missing = [n for n in names if n not in existing]
    for name in names:
        if name in existing:
            have = len(existing[name].partitions)
            if have != partitions:
                print(f"warning: topic {name} exists with {have} partitions (configured: {partitions}); "
                      "left as is", file=sys.stderr)
    if not missing:
        print(f"topics present: {', '.join(names)}", file=sys.stderr)
        return 0
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing],
        operation_timeout=30,
        request_timeout=30,
    )
    failed = 0
    for name, fut in futures.items():
        try:
            fut.result(timeout=35)
            print(f"created topic {name} ({partitions} partitions, replication 1)", file=sys.stderr)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created concurrently: fine
            print(f"error: could not create topic {name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def status(bootstrap: str, names: list[str]) -> int:
    try:
        md = _admin(bootstrap).list_topics(timeout=5)
    except KafkaException as exc:
        print(f"  metadata request to {bootstrap} failed: {exc}")
        return 1
    user = {n: t for n, t in md.topics.items() if not n.startswith("__")}
    total = sum(len(t.partitions) for t in user.values())
    print(f"  cluster {md.cluster_id}, {len(md.brokers)} broker(s), {len(user)} topic(s), {total} partition(s)")
    for name in names:
        t = md.topics.get(name)
        print(f"  {name:<10} {'missing' if t is None else f'{len(t.partitions)} partitions'}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, bootstrap, rest = argv[0], argv[1], argv[2:]
    if cmd == "wait":
        return wait(bootstrap, float(rest[0]), int(rest[1]) if len(rest) > 1 else 0)
    if cmd == "topics":
        return ensure_topics(bootstrap, int(rest[0]), rest[1:])
    if cmd == "status":
        return status(bootstrap, rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # `scripts/kafka.sh status | head -1`
        sys.stderr.close()
        sys.exit(0)
