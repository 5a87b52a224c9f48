"""Read py-spy's folded stacks (``--format raw``): where the samples are, own and inclusive.

    python -m bench.folded bench/results/profiles/workflow.folded [--top 30] [--grep WORD]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"\s*\((?P<file>[^()]*):\d+\)$")


def _frame(raw: str) -> str:
    """``func (path/file.py:123)`` without the line, the path shortened to its package."""
    match = _LINE.search(raw)
    if not match:
        return raw.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{raw[:match.start()].strip()} ({path})"


def main(argv: list[str] | None = None) -> int:
    """Print the top frames by own and by inclusive samples."""
    p = argparse.ArgumentParser(prog="python -m bench.folded")
    p.add_argument("path", type=Path)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--grep", help="only frames whose text contains this")
    args = p.parse_args(argv)
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in args.path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")[1:]]  # the first is the process/thread
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"{args.path}: {total} samples")
    for title, counter in (("own", own), ("inclusive", incl)):
        print(f"-- {title}")
        rows = [(f, n) for f, n in counter.most_common() if not args.grep or args.grep in f][: args.top]
        for f, n in rows:
            print(f"{100 * n / max(1, total):6.1f}%  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
