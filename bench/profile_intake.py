"""Profile intake alone: where one reception's CPU goes, without the rest of the pipeline competing for the cores.

    python -m bench.profile_intake [OUT_DIR] [SECONDS]

Starts its own stack (as every bench does), stops the four other services (SIGSTOP, so the events wait in the
broker and no consumer competes), runs a closed loop of 8 receptions (intake's write slots and as many queued),
and samples intake with py-spy for SECONDS (15) at 100 Hz: OUT_DIR/intake.folded (bench/results/profiles/
intake-alone-<time> by default). Prints the receptions per second and intake's CPU over the sampled window, and
the samples' own time by library. Under the whole pipeline a process's samples mostly show where the scheduler
took the CPU away (a socket write waking Postgres); alone, they show where the CPU goes. py-spy needs
CAP_SYS_PTRACE (root).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import ROOT, own_stack
from shared.auth import issue_token

# Own time by library: the first group whose pattern is in a sample's innermost frame.
GROUPS = (
    ("asyncpg", ("asyncpg/",)),
    ("SQLAlchemy and SQLModel", ("sqlalchemy/", "sqlmodel/")),
    ("OpenTelemetry", ("opentelemetry", "trace/", "asgi/__init__", "fastapi/__init__", "sdk/", "sampling")),
    ("pydantic", ("pydantic",)),
    ("FastAPI and Starlette", ("fastapi/", "starlette/")),
    ("uvicorn and httptools", ("uvicorn/", "httptools")),
    ("asyncio and uvloop", ("asyncio/", "uvloop", "runpy")),
    ("motcua (services/, shared/)", ("services/", "shared/")),
    ("json", ("json/",)),
)


def by_library(folded: Path) -> list[tuple[str, float]]:
    """Share of samples per library, by the innermost frame."""
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frame = stack.split(";")[-1]
        group = next((name for name, patterns in GROUPS if any(p in frame for p in patterns)), "other")
        own[group] += int(count)
        total += int(count)
    return [(name, round(100 * n / max(1, total), 1)) for name, n in own.most_common()]


def _cpu_ticks(pid: int) -> int:
    return sum(map(int, Path(f"/proc/{pid}/stat").read_text().split()[13:15]))


def main(argv: list[str] | None = None) -> int:
    """Run and print."""
    args = argv if argv is not None else sys.argv[1:]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    out = Path(args[0]) if args else ROOT / "bench" / "results" / "profiles" / f"intake-alone-{stamp}"
    seconds = float(args[1]) if len(args) > 1 else 15.0
    out.mkdir(parents=True, exist_ok=True)
    with own_stack(Path(tempfile.mkdtemp(prefix="motcua-profile-intake-"))) as owned:
        others = [pid for name, pid in owned.service_pids.items() if name != "intake"]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            key = owned.stack.private_key_path.read_text()
            units = [f"{i:03d}.01.01.OPRF" for i in range(1, 21)]
            tokens = [[u, issue_token(key, subject=f"profile-clerk-{i}", roles=["clerk"], units=[u],
                                      ttl=timedelta(hours=1))] for i, u in enumerate(units)]  # fmt: skip
            spec = {"base_url": owned.stack.url("intake"), "path": "/api/v1/dossiers", "mode": "closed",
                    "concurrency": 8, "max_connections": 8, "warmup": 5, "duration": seconds + 5, "tokens": tokens}  # fmt: skip
            intake = owned.service_pids["intake"]
            generator = subprocess.Popen([sys.executable, "-m", "bench.loadgen"], cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE)  # fmt: skip
            assert generator.stdin is not None and generator.stdout is not None
            generator.stdin.write(json.dumps(spec).encode())
            generator.stdin.close()
            time.sleep(7)
            before = _cpu_ticks(intake)
            subprocess.run([str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--nonblocking", "--rate", "100",
                            "--duration", f"{seconds:g}", "--pid", str(intake), "--format", "raw",
                            "-o", str(out / "intake.folded")], check=True, capture_output=True)  # fmt: skip
            cpu = (_cpu_ticks(intake) - before) / os.sysconf("SC_CLK_TCK") / seconds
            result = json.loads(generator.stdout.read())
            generator.wait()
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
    per_s = result["accepted_in_window"] / result["window_seconds"]
    print(f"receptions/s {per_s:.1f}; intake {100 * cpu:.0f} % of a core, {1000 * cpu / per_s:.2f} ms per reception")
    for name, share in by_library(out / "intake.folded"):
        print(f"  {share:5.1f} %  {name}")
    print(f"folded stacks: {out / 'intake.folded'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
