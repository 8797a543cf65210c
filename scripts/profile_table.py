"""A py-spy raw profile (folded stacks) as a Markdown table: where the process spent its
non-idle time, by library, by innermost function, and by engine function including callees.

    python scripts/profile_table.py bench/e2e-before.txt "the title" > bench/e2e-before.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench_cluster_report import summarise_profile


def table(path: Path, title: str) -> str:
    s = summarise_profile(path, 1.0)
    out = [f"# {title}", "", f"`{path.name}`: {s['samples']:,} samples (py-spy, idle not sampled)"]
    out += ["", "| by library of the innermost frame | share |", "|---|---:|"]
    out += [f"| {k} | {v:.1%} |" for k, v in s["by_library"].items()]
    out += ["", "| innermost function | share |", "|---|---:|"]
    out += [f"| `{k}` | {v:.1%} |" for k, v in s["top_leaf"]]
    out += ["", "| engine function, with what it calls | share |", "|---|---:|"]
    out += [f"| `{k}` | {v:.1%} |" for k, v in s["top_engine_inclusive"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else Path(sys.argv[1]).stem))
