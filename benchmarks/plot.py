"""Draw the figures from ``report.py``'s JSON: µs per task against rows, and MEM memory against rows.

    python benchmarks/plot.py [benchmarks/results.json]

Needs matplotlib (a benchmarks-only dependency). Writes ``throughput.png`` and ``memory.png``
next to this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
STYLE = {
    "cellfrontier-tasks": ("cellfrontier task-at-a-time", "tab:blue", "o"),
    "cellfrontier-bulk": ("cellfrontier bulk", "tab:green", "s"),
    "data-designer-adapter": ("cellfrontier DataDesigner backend", "tab:orange", "v"),
    "data-designer": ("DataDesigner", "tab:red", "^"),
    "graphlib": ("graphlib (explicit cells)", "tab:purple", "D"),
    "null": ("driver floor (no-op tracker)", "0.5", "x"),
    "cellfrontier": ("cellfrontier", "tab:blue", "o"),
}


def plot_throughput(data: dict[str, Any], path: Path) -> None:
    """Log-log µs per task against rows, one panel per workload."""
    workloads = sorted({r["workload"] for r in data["workloads"]})
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.5), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        for backend, (label, color, marker) in STYLE.items():
            points = sorted(
                (r["rows"], r["us_per_task"])
                for r in data["workloads"]
                if r["workload"] == workload and r["backend"] == backend
            )
            if points:
                xs, ys = zip(*points, strict=True)
                style = "--" if backend == "null" else "-"
                ax.plot(xs, ys, style, color=color, marker=marker, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel("µs per task")
        ax.set_title(f"{workload}: tracker cost per task (lower is better)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_memory(data: dict[str, Any], path: Path) -> None:
    """Log-log bytes held in the MEM state against rows."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for backend in ("cellfrontier", "data-designer"):
        points = sorted((m["rows"], m["bytes"] / 2**20) for m in data["mem"] if m["backend"] == backend)
        if points:
            label, color, marker = STYLE[backend]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "-", color=color, marker=marker, label=label)
            for x, y in points:
                ax.annotate(f"{y:,.1f} MiB", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.axhline(32, color="0.5", linestyle=":", label="32 MiB")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows")
    ax.set_ylabel("MiB held")
    ax.set_title("MEM: W64, all groups admitted, c1..c32 done")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Read the JSON and write both PNGs."""
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else HERE / "results.json"
    data = json.loads(source.read_text())
    plot_throughput(data, HERE / "throughput.png")
    plot_memory(data, HERE / "memory.png")
    print(f"wrote {HERE / 'throughput.png'} and {HERE / 'memory.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
