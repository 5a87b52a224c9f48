"""A/B of a hot-path cut, in one process and the same minutes: the committed code (``git show HEAD:<file>``) against
the working tree, alternated, CPU time per operation (``time.process_time``, this process only).

    python -m bench.ab_micro jwt            # TokenVerifier.verify of the token a client sends with every request
    python -m bench.ab_micro sign           # signing.sign_file: PAdES with the visible block (the lifecycle's sign)
    python -m bench.ab_micro httpcore       # httpcore's per-request `import sniffio` (absent before, installed now)
    python -m bench.ab_micro deps           # a route's Depends(get_deps): a plain def (thread pool) or async def
    python -m bench.ab_micro fontlog        # refuted: fontTools' INFO lines under the service's logging cost nothing measurable
    python -m bench.ab_micro all --rounds 5

Each round runs ``before`` then ``after`` (then swaps the order next round), so neighbours' load hits both alike.
Prints and returns the medians of the rounds, ms per operation.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def head_module(path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as committed (HEAD), imported under another name."""
    source = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(ROOT / path)
    sys.modules[name] = module
    exec(compile(source, str(ROOT / path), "exec"), module.__dict__)  # noqa: S102 - our own committed source
    return module


def cpu_ms(op: Callable[[], object], n: int) -> float:
    """CPU ms per call of ``op`` over ``n`` calls."""
    started = time.process_time()
    for _ in range(n):
        op()
    return (time.process_time() - started) * 1000 / n


def ab(label: str, before: Callable[[], object], after: Callable[[], object], n: int, rounds: int) -> dict[str, float]:
    """Alternate the two; medians of ms per call."""
    before(), after()  # warm caches and imports alike
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        pair = [(a, before), (b, after)] if r % 2 == 0 else [(b, after), (a, before)]
        for sink, op in pair:
            sink.append(cpu_ms(op, n))
    out = {"before_ms": round(statistics.median(a), 4), "after_ms": round(statistics.median(b), 4)}
    print(f"{label}: before {out['before_ms']:.4f} ms -> after {out['after_ms']:.4f} ms CPU per call "
          f"({out['before_ms'] / out['after_ms']:.1f}x; medians of {rounds} rounds of {n})", flush=True, file=sys.__stdout__)
    return out


def jwt_case(rounds: int) -> dict[str, float]:
    from shared import auth

    old = head_module("shared/auth.py", "bench_head_auth")
    with tempfile.TemporaryDirectory() as tmp:
        private, public = auth.generate_keypair(Path(tmp))
        token = auth.issue_token(private.read_text(), subject="bench", roles=["clerk"], units=["000.00.01.H99"],
                                 ttl=timedelta(hours=1))
        kw = {"algorithm": "EdDSA", "issuer": "motcua", "audience": "motcua"}
        before = old.TokenVerifier(public.read_text(), **kw)
        after = auth.TokenVerifier(public.read_text(), **kw)
        assert vars(before.verify(token)) == vars(after.verify(token))
        return ab("jwt verify (same token each request)", lambda: before.verify(token), lambda: after.verify(token),
                  2000, rounds)


def sign_case(rounds: int) -> dict[str, float]:
    from bench.lifecycle import result_pdf
    from services.digitization import pki, signing

    old = head_module("services/digitization/signing.py", "bench_head_signing")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        made = pki.write_test_pki(d / "pki", unit_name="UBND xã Hòa Tiến", unit_code="000.00.31.H56")
        unit = signing.load_signer(made.pkcs12, made.password)
        (d / "a.pdf").write_bytes(result_pdf("000.00.31.H56-261203-0001"))  # what the lifecycle bench uploads
        block = signing.VisibleBlock(page=0, box=(330, 30, 565, 110),
                                     lines=("Ký bởi: UBND xã Hòa Tiến", "Thời gian ký: 09 giờ 05 phút, 03/12/2026"))

        def run(module: types.ModuleType) -> Callable[[], object]:
            def op() -> None:
                module.sign_file(d / "a.pdf", d / "b.pdf", unit, field_name="KySo", reason="Ký số kết quả", block=block)
            return op

        return ab("sign_file (PAdES, visible block)", run(old), run(signing), 10, rounds)


def httpcore_case(rounds: int) -> dict[str, float]:
    """httpcore asks ``import sniffio`` on every request of every httpx client (reporting's LGSP pushes, ...). Before:
    the package was absent, and a failed import is not cached, so each request searched sys.path (measured here with
    the import of a name that is absent, the same search); after: it is installed and the import is a dict lookup."""
    import importlib

    from httpcore._synchronization import current_async_library

    def absent() -> None:
        try:
            importlib.import_module("sniffio_absent_for_the_bench")
        except ImportError:
            pass

    import asyncio

    async def after_op() -> str:
        return current_async_library()

    loop = asyncio.new_event_loop()
    try:
        return ab("httpcore current_async_library (per request)", absent,
                  lambda: loop.run_until_complete(after_op()), 2000, rounds)
    finally:
        loop.close()


def deps_case(rounds: int) -> dict[str, float]:
    """A route taking the service's ``Deps`` (nearly every route of every service): ``shared.service.get_deps`` as
    committed (a plain ``def``: FastAPI runs it in its thread pool) against the working tree's, one FastAPI app each,
    requests as raw ASGI calls in one event loop (the threads' CPU counts: ``process_time`` is the process's)."""
    import asyncio
    from typing import Any

    from fastapi import Depends, FastAPI

    from shared import service

    old = head_module("shared/service.py", "bench_head_service")

    def make(get_deps: Callable[..., Any]) -> FastAPI:
        app = FastAPI()
        app.state.deps = object()

        @app.get("/x")
        async def x(deps: Any = Depends(get_deps)) -> dict[str, bool]:  # noqa: B008 - a local name, not annotations
            return {"ok": deps is not None}

        return app

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/x", "raw_path": b"/x", "query_string": b"", "headers": [(b"host", b"bench")],
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": ""}
    loop = asyncio.new_event_loop()

    def call(app: FastAPI) -> Callable[[], object]:
        async def one() -> None:
            sent: list[dict] = []

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict) -> None:
                sent.append(message)

            await app({**scope, "app": app}, receive, send)
            assert sent[0]["status"] == 200, sent

        async def many() -> None:
            for _ in range(20):
                await one()

        return lambda: loop.run_until_complete(many())

    try:
        out = ab("a route with Depends(get_deps), 20 requests", call(make(old.get_deps)), call(make(service.get_deps)),
                 50, rounds)
        return {k: round(v / 20, 4) for k, v in out.items()}
    finally:
        loop.close()


def fontlog_case(rounds: int) -> dict[str, float]:
    """sign_file with the service's logging (shared.logs.configure_logging: root at INFO, masked JSON lines to stdout,
    here /dev/null): fontTools' INFO lines logged (before) or its logger at WARNING (after). A hypothesis the
    profile suggested (some 30 INFO lines per signature in the log); measured, it made no difference, so nothing
    was changed."""
    import logging
    import os

    from bench.lifecycle import result_pdf
    from services.digitization import pki, signing
    from shared.logs import configure_logging

    saved = sys.stdout
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - restored below
    try:
        configure_logging("digitization")
        fonttools = logging.getLogger("fontTools")
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            made = pki.write_test_pki(d / "pki", unit_name="UBND xã Hòa Tiến", unit_code="000.00.31.H56")
            unit = signing.load_signer(made.pkcs12, made.password)
            (d / "a.pdf").write_bytes(result_pdf("000.00.31.H56-261203-0001"))
            block = signing.VisibleBlock(page=0, box=(330, 30, 565, 110),
                                         lines=("Ký bởi: UBND xã Hòa Tiến", "Thời gian ký: 09 giờ 05 phút, 03/12/2026"))

            def run(level: int) -> Callable[[], object]:
                def op() -> None:
                    fonttools.setLevel(level)
                    signing.sign_file(d / "a.pdf", d / "b.pdf", unit, field_name="KySo", reason="Ký số kết quả",
                                      block=block)
                return op

            return ab("sign_file with the service's logging: fontTools INFO -> WARNING", run(logging.NOTSET),
                      run(logging.WARNING), 10, rounds)
    finally:
        sys.stdout.close()
        sys.stdout = saved


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases."""
    p = argparse.ArgumentParser(prog="python -m bench.ab_micro")
    p.add_argument("case", choices=["jwt", "sign", "httpcore", "deps", "fontlog", "all"])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    cases = {"jwt": jwt_case, "sign": sign_case, "httpcore": httpcore_case, "deps": deps_case, "fontlog": fontlog_case}
    for name, case in cases.items():
        if args.case in (name, "all"):
            case(args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
