"""The settings of every Kafka broker the project runs, in one place: the shared local broker of scripts/kafka.sh
and the tests' private brokers (tests/support/private_services.py). Standard library only.

    broker_config.py properties --port P --controller-port C --data DIR --partitions N [--size shared|private]
                                --output FILE          -> writes server.properties
    broker_config.py jvm-options --heap "-Xms.. -Xmx.." --logs DIR [--size shared|private]
                                                       -> prints the JVM options, one per line

Every broker is a single KRaft node (broker and its own only controller) on 127.0.0.1. The two sizes differ in
threads and internal topics only: `shared` is the long-running broker of a 2-core dev box, `private` a
short-lived broker that a test starts, kills and restarts (it starts faster and costs less CPU).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

LOG4J2 = Path(__file__).resolve().parent / "log4j2.xml"

SIZES: dict[str, dict[str, str]] = {
    "shared": {
        "offsets.topic.num.partitions": "10",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "2",
        "background.threads": "4",
        "log.segment.bytes": "134217728",
    },
    "private": {
        "offsets.topic.num.partitions": "3",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
    },
}


def server_properties(port: int, controller_port: int, data_dir: str | Path, partitions: int, *,
                      size: str = "shared", listeners: Mapping[str, int] | None = None,
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """server.properties of a single-node KRaft broker: the PLAINTEXT listener on `port` (clients, inter-broker),
    the controller on `controller_port`, `listeners` (extra ones: name = security protocol -> port), then
    `extra` (added or overriding)."""
    if size not in SIZES:
        raise ValueError(f"unknown broker size {size!r}; expected one of {sorted(SIZES)}")
    all_listeners = {"PLAINTEXT": port, **(listeners or {})}
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": ",".join([*(f"{n}://127.0.0.1:{p}" for n, p in all_listeners.items()),
                               f"CONTROLLER://127.0.0.1:{controller_port}"]),
        "advertised.listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in all_listeners.items()),
        "listener.security.protocol.map": ",".join([*(f"{n}:{n}" for n in all_listeners), "CONTROLLER:PLAINTEXT"]),
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # Internal topics: one replica (single node).
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        # Messages carry event time (CreateTime = the logical hour, see docs/contracts.md), which may be far in
        # the past (backfills) or ahead of this machine's clock (generated data). Kafka 4 rejects timestamps more
        # than 1 h in the future by default (InvalidTimestampException), and time-based retention would silently
        # delete backfilled data: accept any timestamp and keep everything (local brokers only).
        "log.message.timestamp.type": "CreateTime",
        "log.message.timestamp.before.max.ms": "9223372036854775807",
        "log.message.timestamp.after.max.ms": "9223372036854775807",
        "log.retention.ms": "-1",
        "log.retention.bytes": "-1",
        **SIZES[size],
    }
    props.update(extra or {})
    return props


def render_properties(props: Mapping[str, str], header: str) -> str:
    """The text of a server.properties file: `header` as comment lines, then key=value lines."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + "".join(f"{key}={value}\n" for key, value in props.items())


def jvm_options(heap: str, logs_dir: str | Path, *, size: str = "shared") -> list[str]:
    """The JVM options of a broker (as Kafka's bin/kafka-run-class.sh sets them), with our log4j2 config and log
    folder. A private broker runs with the C1 compiler only: it lives for one test session."""
    if size not in SIZES:
        raise ValueError(f"unknown broker size {size!r}; expected one of {sorted(SIZES)}")
    opts = heap.split() + [
        "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
    if size == "private":
        opts.append("-XX:TieredStopAtLevel=1")
    return [*opts, f"-Dlog4j2.configurationFile={LOG4J2}", f"-Dkafka.logs.dir={logs_dir}"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="broker_config.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    props = sub.add_parser("properties", help="write server.properties")
    props.add_argument("--port", type=int, required=True)
    props.add_argument("--controller-port", type=int, required=True)
    props.add_argument("--data", required=True)
    props.add_argument("--partitions", type=int, required=True)
    props.add_argument("--size", choices=sorted(SIZES), default="shared")
    props.add_argument("--output", required=True)
    props.add_argument("--header", default="Generated by tools/kafka/broker_config.py.")
    jvm = sub.add_parser("jvm-options", help="print the JVM options, one per line")
    jvm.add_argument("--heap", required=True)
    jvm.add_argument("--logs", required=True)
    jvm.add_argument("--size", choices=sorted(SIZES), default="shared")
    args = parser.parse_args(argv)
    if args.command == "properties":
        text = render_properties(server_properties(args.port, args.controller_port, args.data, args.partitions,
                                                   size=args.size), args.header)
        Path(args.output).write_text(text)
    else:
        print("\n".join(jvm_options(args.heap, args.logs, size=args.size)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
