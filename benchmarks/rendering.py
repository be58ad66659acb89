"""Rendering time of hostile answers: linear in their length, measured against escaping them.

    python benchmarks/rendering.py [--sizes 10000,100000,1000000]

Each pathological input (runs of brackets, emphasis markers, backticks, table pipes, raw tags
and so on) is rendered at each size by the crowd's Markdown renderer. Beside the seconds, the
script prints how the cost per character grows from the smallest size to the largest
("growth"; 1.0 is linear, 100 would be quadratic over a 100x range), and the same for
escaping the input as plain text, a linear baseline run in the same process. The Markdown
renderer this replaced took 19 s for 10,000 "[" and 84 s for 20,000 (quadratic).
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

from annotation.rendering import render_markdown

PATTERNS: dict[str, Callable[[int], str]] = {
    "[ run": lambda n: "[" * n,
    "![ run": lambda n: "![" * (n // 2),
    "[]( run": lambda n: "[](" * (n // 3),
    "*a emphasis": lambda n: "*a" * (n // 2),
    "_a_ emphasis": lambda n: "_a " * (n // 3),
    "** run": lambda n: "**" * (n // 2),
    "` run": lambda n: "`" * n,
    "`a` spans": lambda n: "`a``" * (n // 4),
    "< run": lambda n: "<" * n,
    "<a tags": lambda n: "<a " * (n // 3),
    "table pipes": lambda n: "|a" * (n // 4) + "\n" + "|-" * (n // 4),
    "> quotes": lambda n: "> " * (n // 2),
    "nested lists": lambda n: "".join("  " * (i % 40) + "- x\n" for i in range(n // 50)),
    "&entities": lambda n: "&amp;" * (n // 5),
    "prose": lambda n: ("The answer is *probably* `x < y`, see [docs](https://x.org). " * n)[:n],
}


def seconds(function: Callable[[str], object], text: str) -> float:
    start = time.perf_counter()
    function(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    small, large = sizes[0], sizes[-1]
    header = " ".join(f"{size:>11,}" for size in sizes)
    print(f"{'input':14} {header}   growth  escape growth")
    worst = 0.0
    for name, make in PATTERNS.items():
        texts = {size: make(size) for size in sizes}
        took = {size: seconds(render_markdown, texts[size]) for size in sizes}
        escaped = {size: max(seconds(escape, texts[size]), 1e-7) for size in (small, large)}
        growth = (took[large] / len(texts[large])) / (took[small] / len(texts[small]))
        baseline = (escaped[large] / len(texts[large])) / (escaped[small] / len(texts[small]))
        worst = max(worst, growth)
        row = " ".join(f"{took[size]:>10.3f}s" for size in sizes)
        print(f"{name:14} {row}   {growth:6.2f}  {baseline:6.2f}")
    print(f"worst growth of the cost per character from {small:,} to {large:,}: {worst:.2f}")


if __name__ == "__main__":
    main()
