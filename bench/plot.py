"""The bench's figures for docs/performance.md, from a results file of ``python -m bench``.

    pip install matplotlib                   # the `bench` extra; not needed to run the bench itself
    python -m bench.plot [bench/results/latest.json] [--out docs/images]

Writes performance-throughput.png (requests per second by row, with the share of the baseline) and
performance-latency.png (latency percentiles of every row, at full load and at half of it).
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.run import RESULTS

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
BASELINE_COLOUR, BOTKIT_COLOUR, PEER_COLOUR = "#9e9e9e", "#1f77b4", "#ff7f0e"


def throughput(results: dict[str, Any], out: Path) -> Path:
    rows = [row for row in results["rows"] if row["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [row["row"] for row in rows]
    values = [row["rps"] for row in rows]
    colours = [BASELINE_COLOUR if row["driver"] is None else PEER_COLOUR if row.get("peer") else BOTKIT_COLOUR
               for row in rows]
    bars = ax.bar(names, values, color=colours)
    for bar, row in zip(bars, rows, strict=True):
        label = f"{row['rps']:.0f}" + ("" if row["ratio"] is None else f"\n{100 * row['ratio']:.0f}%")
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("requests per second")
    settings = results["settings"]
    ax.set_title(f"Counting bot behind the Telegram webhook: {settings['users']} users, "
                 f"{settings['connections']} in flight ({results['machine']['nproc']} cores)", fontsize=10)
    ax.set_ylim(0, max(values) * 1.2)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / "performance-throughput.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency(results: dict[str, Any], out: Path) -> Path:
    """Percentile curves of the main rows (the ablation rows would crowd it: they are in the table)."""
    fig, (full, half) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    names = list(dict.fromkeys(run["row"] for run in results["runs"] if run["variant"] is None))
    colours = dict(zip(names, itertools.cycle(plt.get_cmap("tab10").colors), strict=False))
    for run_name, ax, title in (("closed", full, "at full load (64 in flight)"), ("half", half, "at half the maximum rate")):
        shown = set()
        for run in results["runs"]:
            if run_name not in run or run["row"] in shown or run["variant"] is not None:
                continue
            shown.add(run["row"])
            points = [(ms, p) for p, ms in run[run_name]["cdf"] if ms is not None]
            style = "--" if run["driver"] is None else "-"
            ax.plot([ms for ms, _ in points], [p for _, p in points], style, label=run["row"], linewidth=1.4,
                    color=colours[run["row"]])
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_title(title, fontsize=10)
        ax.axvline(20, color="red", linewidth=0.8, alpha=0.5)
        ax.grid(alpha=0.3, which="both")
    full.set_ylabel("percentile")
    full.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = out / "performance-latency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plot")
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (throughput(results, args.out), latency(results, args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
