#!/usr/bin/env python3
"""Draw deploy latency against project size from bench/airflow_latency_bench.py's results.

Reads every results file (--results of the benchmark, bench/results/*.json by default) and draws
one panel per parse-queue state (idle, busy): for each system (dagship, GitDagBundle, the stock
dags folder) and change (edit, add) its p50 against the project's DAG count, with a bar up to its
p95, and the targets (p50 1.5 s, p95 3 s) as lines. Runs of the same size, queue, system and
change from several files are pooled.

It also prints the figures as a Markdown table (docs/performance.md has it).

Run: python bench/latency_plot.py [FILE.json ...] [--out docs/img/deploy-latency.png]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine
import matplotlib.pyplot as plt
import matplotlib.ticker

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "docs" / "img" / "deploy-latency.png"
P50_TARGET_S, P95_TARGET_S = 1.5, 3.0
COLOURS = {"dagship": "tab:blue", "GitDagBundle": "tab:orange", "stock dags folder": "tab:gray"}
# Points of one size drawn side by side rather than on top of each other (log x).
SHIFT = {"dagship": 0.9, "GitDagBundle": 1.0, "stock dags folder": 1.1}
STYLES = {"edit": ("o", "-"), "add": ("s", "--")}
QUEUES = ("idle", "busy")

Key = tuple[str, str, str]  # (queue, system, change)


def nearest_rank(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def load(paths: list[Path]) -> tuple[dict[Key, dict[int, list[float]]], list[str]]:
    """Times by (queue, system, change) and project size, and a line per file read."""
    times: dict[Key, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    sources = []
    for path in paths:
        document = json.loads(path.read_text())
        queue, dags = document["parse_queue"], int(document["dags"])
        for figure in document["figures"]:
            times[(queue, figure["system"], figure["change"])][dags] += figure["times"]
        start, end = document["load_average"]["start"][0], document["load_average"]["end"][0]
        sources.append(
            f"{path.name}: {document['date']}, {document.get('minutes', '?')} min, "
            f"load average {start:.1f} at the start, {end:.1f} at the end"
        )
    return times, sources


def table(times: dict[Key, dict[int, list[float]]]) -> str:
    """p50 / p95 (runs) per project size, queue and change, one column per system."""
    systems = [s for s in COLOURS if any(key[1] == s for key in times)]
    lines = [
        "| DAGs | parse queue | change | " + " | ".join(systems) + " |",
        "|---|---|---|" + "---|" * len(systems),
    ]
    rows = sorted(
        {(size, queue, change) for (queue, _, change), by in times.items() for size in by},
        key=lambda row: (row[0], QUEUES.index(row[1]), row[2] != "edit"),
    )
    for size, queue, change in rows:
        cells = []
        for system in systems:
            runs = times.get((queue, system, change), {}).get(size, [])
            cells.append(
                f"{statistics.median(runs):.2f} / {nearest_rank(runs, 0.95):.2f} s ({len(runs)})"
                if runs
                else "not measured"
            )
        lines.append(f"| {size:,} | {queue} | {change} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw(times: dict[Key, dict[int, list[float]]], out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, queue in zip(axes, QUEUES, strict=True):
        for (q, system, change), by_size in sorted(times.items()):
            if q != queue:
                continue
            sizes = sorted(size for size, runs in by_size.items() if runs)
            if not sizes:
                continue
            p50 = [statistics.median(by_size[size]) for size in sizes]
            p95 = [nearest_rank(by_size[size], 0.95) for size in sizes]
            marker, line = STYLES.get(change, ("^", ":"))
            shift = SHIFT.get(system, 1.0) * (0.97 if change == "edit" else 1.03)
            ax.errorbar(
                [size * shift for size in sizes],
                p50,
                yerr=[[0.0] * len(sizes), [hi - mid for hi, mid in zip(p95, p50, strict=True)]],
                marker=marker,
                linestyle=line,
                color=COLOURS.get(system, "black"),
                capsize=3,
                label=f"{system}, {change}",
            )
        ax.axhline(P50_TARGET_S, color="green", linewidth=0.8, linestyle=":", label="p50 target")
        ax.axhline(P95_TARGET_S, color="red", linewidth=0.8, linestyle=":", label="p95 target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(60, 17000)
        ax.set_xticks([100, 1000, 10000], ["100", "1,000", "10,000"])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("DAG files in the project")
        title = "parse queue idle" if queue == "idle" else "parse queue busy (interval 30 s)"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds until Airflow parsed the change (p50, bar to p95)")
    handles, labels = axes[1].get_legend_handles_labels()
    more_h, more_l = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True)) | dict(zip(more_l, more_h, strict=True))
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=4, fontsize="small")
    fig.suptitle("One-file deploy live in Airflow: dagship deploy --dags --wait vs git push")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="results files (bench/results/*)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PNG to write")
    args = parser.parse_args(argv)
    paths = args.files or sorted((HERE / "results").glob("*.json"))
    if not paths:
        raise SystemExit(
            "no results: run bench/airflow_latency_bench.py --results bench/results/NAME.json"
        )
    times, sources = load(paths)
    draw(times, args.out)
    print("\n".join(sources))
    print(table(times))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
