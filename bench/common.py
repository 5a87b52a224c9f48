"""What the benchmarks share: statistics, CPU and memory of process trees, the machine, and an own stack.

:mod:`bench.intake` and :mod:`bench.lifecycle` both start an isolated stack (embedded Postgres in a temp dir,
a Tansu broker, the five services as processes), watch the CPU of every process during a measured window and
the resident memory of every service, and record the machine and the commit they measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from motcua.localstack import Stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_MIB = 1024 * 1024


# -- statistics ----------------------------------------------------------------------------------------------


def percentiles(values: list[float], points: tuple[float, ...] = (50, 90, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles and the maximum (None when there are no values)."""
    if not values:
        return {**{f"p{p:g}": None for p in points}, "max": None, "n": 0}
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for point in points:
        rank = max(1, -(-len(ordered) * point // 100))  # ceil
        out[f"p{point:g}"] = round(ordered[int(rank) - 1], 2)
    out["max"] = round(ordered[-1], 2)
    out["n"] = len(ordered)
    return out


# -- processes: CPU and memory ---------------------------------------------------------------------------------


def pid_listening_on(port: int) -> int | None:
    """The pid of the process listening on a local TCP port (needs the right to see it)."""
    with contextlib.suppress(psutil.Error, PermissionError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    return None


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, Any]:
    """CPU seconds (user + system) of each process tree, per pid, and the machine's busy seconds."""
    snap: dict[str, Any] = {"_t": time.monotonic()}
    for name, roots in groups.items():
        per_pid: dict[int, float] = {}
        for root in roots:
            for proc in _tree(root):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    per_pid[proc.pid] = times.user + times.system
        snap[name] = per_pid
    machine = psutil.cpu_times()
    snap["_busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    snap["_stall"] = _cpu_pressure_us()
    return snap


def _cpu_pressure_us() -> float | None:
    """Linux PSI: microseconds some runnable task waited for a CPU (None where unsupported)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return float(line.rsplit("total=", 1)[1])
    return None


def cpu_percent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Per group: % of one core during the interval; ``machine`` is every process of the machine."""
    wall = after["_t"] - before["_t"]
    out: dict[str, float] = {}
    for name, per_pid in after.items():
        if name.startswith("_"):
            continue
        used = sum(max(0.0, t - before.get(name, {}).get(pid, 0.0)) for pid, t in per_pid.items())
        out[name] = round(100 * used / wall, 1)
    out["machine"] = round(100 * (after["_busy"] - before["_busy"]) / wall, 1)
    if before.get("_stall") is not None and after.get("_stall") is not None:
        out["cpu_stall_pct"] = round((after["_stall"] - before["_stall"]) / 1e6 / wall * 100, 1)
    return out


def memory(groups: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """Per group: RSS and USS of the process tree in MiB, and PSS (shared pages split, e.g. Postgres' buffers)."""
    out: dict[str, dict[str, float]] = {}
    for name, roots in groups.items():
        rss = uss = pss = 0
        procs = 0
        for root in roots:
            for proc in _tree(root):
                with contextlib.suppress(psutil.Error):
                    info = proc.memory_full_info()
                    rss += info.rss
                    uss += getattr(info, "uss", 0)
                    pss += getattr(info, "pss", 0)
                    procs += 1
        if procs:
            out[name] = {"rss_mib": round(rss / _MIB, 1), "uss_mib": round(uss / _MIB, 1), "pss_mib": round(pss / _MIB, 1),
                         "processes": procs}
    return out


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the machine and the code -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What ran it."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_info() -> dict[str, Any]:
    """The commit measured and whether the working tree differs from it."""
    def git(*cmd: str) -> str | None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10)
            if done.returncode == 0:
                return done.stdout.strip()
        return None

    status = git("status", "--porcelain", "--", "services", "shared")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "services_or_shared_modified": None if status is None else bool(status)}


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


# -- an own stack --------------------------------------------------------------------------------------------


@dataclass
class OwnStack:
    """An isolated stack this process started: its Postgres, broker, services and the pids to watch."""

    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    stack: Stack
    service_pids: dict[str, int] = field(default_factory=dict)

    @property
    def postgres_pid(self) -> int:
        """The postmaster (its children are Postgres' backends)."""
        return int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])

    def groups(self, **extra: list[int]) -> dict[str, list[int]]:
        """Process groups to watch: services, Postgres, broker and any extra ones."""
        groups = {name: [pid] for name, pid in self.service_pids.items()}
        groups["postgres"] = [self.postgres_pid]
        if self.broker.pid:
            groups["broker"] = [self.broker.pid]
        groups.update({k: v for k, v in extra.items() if v})
        return groups


@contextlib.contextmanager
def own_stack(workdir: Path, *, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[OwnStack]:
    """Embedded Postgres and Tansu on free ports and the five services as processes; all stopped on exit."""
    pg = EmbeddedPostgres(workdir / "pgdata", port=free_port())
    broker: EmbeddedBroker | None = None
    stack: Stack | None = None
    try:
        pg.start()
        broker = EmbeddedBroker(port=free_port(), log_path=workdir / "broker.log")
        broker.start()
        stack = Stack.isolated(pg, broker, workdir / "stack", env=env)
        asyncio.run(stack.start(timeout=timeout))
        yield OwnStack(pg, broker, stack, {s: p.process.pid for s, p in stack.services.items() if p.process})
    finally:
        if stack is not None:
            stack.stop()
        if broker is not None:
            broker.stop()
        pg.stop()


def write_results(report: dict[str, Any], out: Path, name: str, latest: str) -> Path:
    """``out/<name>-<UTC timestamp>.json`` and ``out/<latest>`` (the same figures), UTF-8."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = report["started_at"].replace(":", "").replace("-", "")
    path = out / f"{name}-{stamp}.json"
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    (out / latest).write_text(text, encoding="utf-8")
    return path
