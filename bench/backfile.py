"""Back-digitization speed: one batch of N scans, ZIP in, every scan converted to PDF/A, sealed and filed.

    .venv/bin/python -m bench.backfile [--scans 200] [--workers 2]

Starts its own embedded Postgres, Tansu broker and the digitization service (nothing else is needed), posts one
batch as a clerk would (``POST /api/v1/backfile/batches``), and reports files and pages per second of the whole
request, the CPU of the service and of Postgres during it, and the service's resident memory before and after.
The scans look like a ward's archive: A4 pages at 200 dpi, most in grey PNG, some colour JPEG, some two-page TIFF,
some PDF. Figures go to ``bench/results/backfile-<time>.json`` and ``bench/results/backfile-latest.json``.
It asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import tempfile
import threading
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psutil
from fpdf import FPDF
from PIL import Image, ImageDraw

from bench.common import (
    RESULTS,
    cpu_percent,
    cpu_snapshot,
    git_info,
    machine_info,
    write_results,
)
from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from motcua.localstack import Stack

A4_200DPI = (1654, 2339)
FIELDS = ("Hộ tịch", "Chứng thực", "Đất đai")


def _page(n: int, mode: str) -> Image.Image:
    image = Image.new(mode, A4_200DPI, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((80, 80, A4_200DPI[0] - 80, A4_200DPI[1] - 80), outline="black", width=6)
    for line in range(40):  # lines of "text", so the page compresses like a typed paper, not like a blank one
        y = 200 + line * 50
        draw.line((160, y, 160 + (n * 37 + line * 53) % 1200 + 200, y), fill="black", width=3)
    return image


def scan(n: int) -> tuple[str, bytes]:
    out = io.BytesIO()
    if n % 20 == 7:
        pdf = FPDF()
        pdf.add_page()
        pdf.image(_page(n, "L"), x=0, y=0, w=210)
        return "pdf", bytes(pdf.output())
    if n % 20 == 3:
        first, second = _page(n, "L"), _page(n + 1, "L")
        first.save(out, format="TIFF", save_all=True, append_images=[second], dpi=(200, 200), compression="tiff_deflate")
        return "tif", out.getvalue()
    if n % 5 == 1:
        _page(n, "RGB").save(out, format="JPEG", quality=85, dpi=(200, 200))
        return "jpg", out.getvalue()
    _page(n, "L").save(out, format="PNG", dpi=(200, 200))
    return "png", out.getvalue()


def batch(count: int) -> tuple[bytes, int]:
    """The ZIP and its number of pages."""
    rows = ["file,paper_kind,number,issuer,issued_on,owner_id_number,field"]
    out = io.BytesIO()
    pages = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for n in range(count):
            ext, data = scan(n)
            pages += 2 if ext == "tif" else 1
            name = f"scans/{n:04d}.{ext}"
            z.writestr(name, data)
            issued = date(2010, 1, 1) + timedelta(days=n)
            rows.append(f"{name},Giấy khai sinh,{n}/BENCH,UBND phường Bến Nghé,{issued},0790{80 + n % 20:02d}{n:06d},{FIELDS[n % 3]}")
        z.writestr("metadata.csv", "\n".join(rows).encode())
    return out.getvalue(), pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="DIGITIZATION_BACKFILE_SIGN_WORKERS")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    zipped, pages = batch(args.scans)
    unit = "000.00.12.H56"
    with tempfile.TemporaryDirectory(prefix="motcua-bench-backfile-") as tmp:
        workdir = Path(tmp)
        pg = EmbeddedPostgres(workdir / "pgdata", port=free_port())
        broker = EmbeddedBroker(port=free_port(), log_path=workdir / "broker.log")
        stack: Stack | None = None
        try:
            pg.start()
            broker.start()
            stack = Stack.isolated(
                pg, broker, workdir / "stack", services=["digitization"],
                env={"DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "MOTCUA_HOME": str(workdir / "home"),
                     "DIGITIZATION_BACKFILE_SIGN_WORKERS": str(args.workers)},
            )  # fmt: skip
            asyncio.run(stack.start(timeout=90))
            process = stack.services["digitization"].process
            assert process is not None
            service_pid = process.pid
            postgres_pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
            groups = {"digitization": [service_pid], "postgres": [postgres_pid]}
            rss_before = psutil.Process(service_pid).memory_info().rss
            token = stack.token("clerk", units=[unit])
            peak = [rss_before]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.2):
                    with contextlib.suppress(psutil.Error):
                        peak[0] = max(peak[0], psutil.Process(service_pid).memory_info().rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            before = cpu_snapshot(groups)
            t0 = time.perf_counter()
            response = httpx.post(
                f"{stack.url('digitization')}/api/v1/backfile/batches", data={"unit": unit},
                files={"file": ("batch.zip", zipped, "application/zip")}, headers={"Authorization": f"Bearer {token}"},
                timeout=3600,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            after = cpu_snapshot(groups)
            rss_after = psutil.Process(service_pid).memory_info().rss
            done.set()
            sampler.join()
            if response.status_code != 201:
                print(response.status_code, response.text[:2000])
                return 1
            body = response.json()
        finally:
            if stack is not None:
                stack.stop()
            broker.stop()
            pg.stop()
    report = {
        "benchmark": "backfile",
        "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m bench.backfile " + " ".join(argv or []),
        "scans": args.scans,
        "pages": pages,
        "zip_bytes": len(zipped),
        "documents_filed": body["documents"],
        "seconds": round(seconds, 2),
        "files_per_second": round(args.scans / seconds, 2),
        "pages_per_second": round(pages / seconds, 2),
        "sign_workers": args.workers,
        "cpu_percent": cpu_percent(before, after),
        "digitization_rss_mib": {k: round(v / 2**20, 1) for k, v in {"before": rss_before, "peak": peak[0], "after": rss_after}.items()},
        "machine": machine_info(),
        "git": git_info(),
    }
    path = write_results(report, args.out, "backfile", "backfile-latest.json")
    print(f"{args.scans} scans ({pages} pages, {len(zipped) / 2**20:.1f} MiB ZIP) filed in {seconds:.1f} s: "
          f"{report['files_per_second']} files/s, {report['pages_per_second']} pages/s; CPU {report['cpu_percent']}; "
          f"digitization RSS {report['digitization_rss_mib']} MiB → {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
