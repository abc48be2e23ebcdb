"""Private, throwaway PostgreSQL and Kafka instances for tests that stop, restart or break a service.

The shared services (scripts/postgres.sh, scripts/kafka.sh) serve every engineer and test run on the machine:
a test must never stop them. A fault test starts its own instance instead - own data folder (a temporary
folder), own free port - and may stop, kill and restart it at will:

    pg = PrivatePostgres.create()            # initdb + start, role/password of the warehouse
    pg.create_database("t1"); pg.params("t1") # connection parameters like the conftest's postgres_service
    pg.restart(mode="immediate")             # crash + recovery; "fast" = clean shutdown
    pg.destroy()

    kafka = PrivateKafka.create()            # KRaft single node from the jars scripts/kafka.sh resolved
    kafka.bootstrap; kafka.restart(); kafka.destroy()
    PrivateKafka.create(listeners={"SASL_PLAINTEXT": None}, properties={...})  # extra listeners / settings

Both are started the way the project scripts start the shared ones: PostgreSQL with the server binaries
scripts/postgres.sh finds (PG_BINDIR, /usr/lib/postgresql/*/bin, `pg_config --bindir`), run as the `postgres`
OS user when we are root (initdb refuses root); Kafka from .local/kafka/libs (resolved by `scripts/kafka.sh
start`) with the same main class, and the JVM options and server.properties of tools/kafka/broker_config.py
(the shared broker's, sized for a short-lived broker, with its own ports and folders), a storage formatted
once per instance. Ports are picked below the kernel's ephemeral port range so no outgoing connection can
take them while the instance is down between a stop and a start.

Command line (for poking at it by hand, from the repository root): python -m tests.support.private_services
pg|kafka -> starts one, prints how to reach it, stops and deletes it on Enter.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.kafka import broker_config

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"
KAFKA_ADMIN = ROOT / "tools" / "kafka" / "kafka_admin.py"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


# ------------------------------------------------------------------------------------------------ helpers

def _is_root() -> bool:
    return os.geteuid() == 0


def free_port(exclude: set[int] | None = None) -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range (never handed out as a source port)."""
    lo = 32768
    try:
        lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    top = max(11000, min(lo, 61000)) - 1
    rnd = random.Random()
    for _ in range(500):
        port = rnd.randint(max(10000, top - 12000), top)
        if exclude and port in exclude:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found")


def private_dir(prefix: str) -> Path:
    """A new folder the `postgres` OS user can use when we are root (pytest's tmp_path is mode 700)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("SHOPSTREAM_TESTSVC_DIR", "/tmp")))
    base.chmod(0o755)
    return base


def last_lines(path: Path, n: int) -> str:
    """The last `n` lines of the log file `path` ("" while it does not exist), for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def pg_bindir() -> Path:
    """The PostgreSQL server binaries, found the way scripts/postgres.sh finds them."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in p.parent.name.split(".")
                                                                              if x.isdigit()], reverse=True):
        if (d / "initdb").exists():
            return d
    if shutil.which("pg_config"):
        d = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
        if (d / "initdb").exists():
            return d
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql, "
                       "or set PG_BINDIR")


# ------------------------------------------------------------------------------------------------ PostgreSQL

@dataclass
class PrivatePostgres:
    base: Path
    port: int
    user: str
    password: str
    bindir: Path = field(default_factory=pg_bindir)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sock(self) -> Path:
        return self.base / "run"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def _as_owner(self, *cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        full = ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else list(cmd)
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.log_tail()}")
        return result

    def log_tail(self, n: int = 30) -> str:
        return last_lines(self.log, n)

    @classmethod
    def create(cls, user: str | None = None, password: str | None = None, port: int | None = None,
               settings: dict[str, str] | None = None) -> PrivatePostgres:
        """initdb a new cluster in a temporary folder, start it, create the login role."""
        user = user or os.environ.get("PGUSER", "shopstream")
        password = password or os.environ.get("PGPASSWORD") or base64.urlsafe_b64encode(os.urandom(12)).decode()
        pg = cls(private_dir("shopstream-testpg-"), port or free_port(), user, password)
        pg.sock.mkdir()
        if _is_root():
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
            shutil.chown(pg.base, "postgres", "postgres")
            shutil.chown(pg.sock, "postgres", "postgres")
        pg._as_owner(str(pg.bindir / "initdb"), "-D", str(pg.data), "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        # A throwaway cluster: no fsync (a process crash - what the tests do - loses nothing the OS has).
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(pg.port), "unix_socket_directories": f"'{pg.sock}'",
                "max_connections": "60", "fsync": "off", "shared_buffers": "64MB", "logging_collector": "off"}
        conf.update(settings or {})
        with (pg.data / "postgresql.conf").open("a") as fh:
            fh.write("\n# tests/support/private_services.py\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
        pg.start()
        pg.superuser_sql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        return pg

    def start(self) -> None:
        self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                       "start")

    def stop(self, mode: str = "fast") -> None:
        """mode: fast (clean shutdown, clients disconnected), immediate (a crash: recovery on the next start)."""
        self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def running(self) -> bool:
        return self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def superuser_sql(self, sql: str, dbname: str = "postgres") -> str:
        return self._as_owner(str(self.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                              str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", dbname, "-c", sql).stdout

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.sock} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> dict:
        self.superuser_sql(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        return self.params(name)

    def params(self, dbname: str) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "password": self.password,
                "dbname": dbname}

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ Kafka

BROKER_MAIN = "kafka.Kafka"
STORAGE_MAIN = "kafka.tools.StorageTool"


@dataclass
class PrivateKafka:
    base: Path
    port: int
    controller_port: int
    partitions: int = 3
    heap: str = "-Xms128m -Xmx384m"
    proc: subprocess.Popen | None = None
    listener_ports: dict[str, int] = field(default_factory=dict)  # extra listeners: name -> port

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def props(self) -> Path:
        return self.base / "server.properties"

    @property
    def logdir(self) -> Path:
        return self.base / "logs"

    def java_cmd(self, main: str, *args: str) -> list[str]:
        """The JVM launch of `main` with a private broker's options (tools/kafka/broker_config.py) and the jars
        scripts/kafka.sh resolved. The only Python place that builds a Kafka JVM command."""
        opts = broker_config.jvm_options(self.heap, self.logdir, size="private")
        return ["java", *opts, "-cp", f"{KAFKA_LIBS}/*", main, *args]

    def server_properties(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """server.properties of this broker (tools/kafka/broker_config.py's, sized for a private broker, with its
        own ports and folders): the PLAINTEXT listener (start-up check, inter-broker), the controller,
        `listener_ports` (name = security protocol), then `extra` (added or overriding)."""
        return broker_config.server_properties(self.port, self.controller_port, self.base / "data", self.partitions,
                                               size="private", listeners=self.listener_ports, extra=extra)

    @classmethod
    def create(cls, partitions: int = 3, *, listeners: Mapping[str, int | None] | None = None,
               properties: Mapping[str, str] | None = None,
               prefix: str = "shopstream-testkafka-") -> PrivateKafka:
        """Write server.properties, format the storage, start the broker.

        listeners: extra listeners besides PLAINTEXT, name (= its security protocol, e.g. "SASL_PLAINTEXT") ->
        port (None: a free one); their ports are in `listener_ports`. properties: server.properties entries
        added or overriding the defaults (e.g. sasl.enabled.mechanisms, listener.name.<l>.<m>.sasl.jaas.config).
        """
        if not (KAFKA_LIBS / ".resolved").exists():
            raise RuntimeError(f"{KAFKA_LIBS} missing: run scripts/kafka.sh start once (it resolves the jars)")
        port = free_port()
        k = cls(private_dir(prefix), port, free_port({port}), partitions)
        try:
            taken = {k.port, k.controller_port}
            for name, lport in (listeners or {}).items():
                k.listener_ports[name] = lport or free_port(taken)
                taken.add(k.listener_ports[name])
            k.logdir.mkdir()
            k.props.write_text(broker_config.render_properties(
                k.server_properties(properties), "tests/support/private_services.py: a private single-node KRaft broker"))
            cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
            while cid.startswith("-"):
                cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
            fmt = subprocess.run(k.java_cmd(STORAGE_MAIN, "format", "--config", str(k.props), "--cluster-id", cid,
                                            "--ignore-formatted"), capture_output=True, text=True, timeout=120)
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting the private Kafka storage failed:\n{fmt.stdout}\n{fmt.stderr}")
            k.start()
        except BaseException:
            k.destroy()
            raise
        return k

    def start(self, timeout: float = 90) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        out = (self.logdir / "kafka.out").open("ab")
        self.proc = subprocess.Popen(self.java_cmd(BROKER_MAIN, str(self.props)), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        wait = subprocess.run([str(VENV_PYTHON), str(KAFKA_ADMIN), "wait", self.bootstrap, str(int(timeout)),
                               str(self.proc.pid)], capture_output=True, text=True)
        if wait.returncode != 0:
            tail = self.log_tail()
            self.kill()
            raise RuntimeError(f"private Kafka on {self.bootstrap} did not start (rc {wait.returncode}):\n{tail}")

    def log_tail(self, n: int = 30) -> str:
        return last_lines(self.logdir / "server.log", n)

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM), SIGKILL after `timeout` s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """A crash: SIGKILL (the next start recovers the logs)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def restart(self, down_seconds: float = 0.0, crash: bool = False) -> None:
        self.kill() if crash else self.stop()
        time.sleep(down_seconds)
        self.start()

    def create_topics(self, names: list[str], partitions: int | None = None) -> None:
        from confluent_kafka.admin import AdminClient

        from tests.support.throwaway import create_topics

        create_topics(AdminClient({"bootstrap.servers": self.bootstrap}), names, partitions or self.partitions)

    def destroy(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else ""
    if what == "pg":
        svc = PrivatePostgres.create()
        print(f"PostgreSQL on 127.0.0.1:{svc.port} (data {svc.data}); superuser: psql '{svc.admin_dsn()}'")
    elif what == "kafka":
        svc = PrivateKafka.create()
        print(f"Kafka on {svc.bootstrap} (data {svc.base})")
    else:
        print("usage: python -m tests.support.private_services pg|kafka", file=sys.stderr)
        return 2
    try:
        input("Enter stops and deletes it. ")
    finally:
        svc.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
