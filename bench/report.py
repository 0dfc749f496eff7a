"""From runs to rows (medians when the plan was repeated) and the printed table with the targets."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from bench.scenarios import Row

TARGETS = {"memory": 0.70, "redis": 0.50}
HALF_RATE_P99_MS = 20.0
IDLE_SESSION_BYTES = 2048


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(rows: list[Row], runs: list[dict[str, Any]], skipped: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per baseline worker count and per row, in table order."""
    baselines = [Row(None, workers) for workers in sorted({run["workers"] for run in runs
                                                           if run["driver"] is None and run["variant"] is None})]
    summary = []
    for row in baselines + rows:
        mine = [run for run in runs if run["row"] == row.name]
        entry: dict[str, Any] = {"row": row.name, "driver": row.driver, "workers": row.workers, "variant": row.variant,
                                 "peer": row.peer}
        if row.name in skipped or not mine:
            entry["status"] = skipped.get(row.name, "not run")
            summary.append(entry)
            continue
        halves = [run["half"] for run in mine if "half" in run]
        entry.update(
            status="ok",
            runs=len(mine),
            rps=_median(run["closed"]["rps"] for run in mine),
            p50_ms=_median(run["closed"]["latency_ms"]["p50"] for run in mine),
            p99_ms=_median(run["closed"]["latency_ms"]["p99"] for run in mine),
            ratio=_median(run.get("ratio") for run in mine),
            half_rate=_median(half["rate"] for half in halves),
            half_p50_ms=_median(half["latency_ms"]["p50"] for half in halves),
            half_p99_ms=_median(half["latency_ms"]["p99"] for half in halves),
            cpu_us_per_request=_median(run["closed"]["server_cpu_us_per_request"] for run in mine),
            store_cpu_us_per_request=_median(run["closed"].get("store_cpu_us_per_request") for run in mine),
            peak_rss_mb=max(run["peak_rss_bytes"] for run in mine) / 2**20,
            replies_per_request=_median(run["closed"]["replies_per_request"] for run in mine),
            other_cpu_cores=max(run["closed"]["other_cpu_cores"] for run in mine),
            errors=sum(run["closed"]["requests"] - run["closed"]["ok"] for run in mine),
            increments=_increments(mine),
        )
        summary.append(entry)
    return summary


def _increments(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The counts the row's replies carried, summed over its runs; None where they are not checked (the
    baseline's ×N processes count apart) or the runs predate the check."""
    found = [run["increments"] for run in runs if run.get("increments", {}).get("checked")]
    if not found:
        return None
    return {key: sum(tally[key] for tally in found) for key in ("replies", "lost", "gaps", "unparsed")}


def _lost(increments: dict[str, Any] | None) -> str:
    if increments is None:
        return "–"
    replies, lost = increments["replies"], increments["lost"]
    text = "0" if lost == 0 else f"{lost} ({100 * lost / max(1, replies):.1f}%)"
    if increments["gaps"]:
        text += f", {increments['gaps']} gaps"
    if increments["unparsed"]:
        text += f", {increments['unparsed']} replies unread"
    return text


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (the form docs/performance.md holds)."""
    lines = [
        "| row | req/s | p50 ms | p99 ms | vs baseline | p99 ms at half rate | server CPU µs/req | peak RSS MB "
        "| lost increments |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['row']} | {row['status']} | | | | | | | |")
            continue
        ratio = "–" if row["ratio"] is None else f"{100 * row['ratio']:.0f}%"
        half = "–" if row["half_p99_ms"] is None else f"{row['half_p99_ms']:.1f} (at {row['half_rate']:.0f}/s)"
        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        cpu = _fmt(row["cpu_us_per_request"], ".0f")
        if row["store_cpu_us_per_request"] is not None:
            cpu += f" (+{row['store_cpu_us_per_request']:.0f} in {row['driver']})"
        lines.append(
            f"| {row['row']} | {row['rps']:.0f}{errors} | {_fmt(row['p50_ms'], '.1f')} | {_fmt(row['p99_ms'], '.1f')} "
            f"| {ratio} | {half} | {cpu} | {row['peak_rss_mb']:.0f} | {_lost(row.get('increments'))} |")
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[str]:
    by_name = {row["row"]: row for row in results["rows"] if row["status"] == "ok"}
    lines = []
    for name, goal in TARGETS.items():
        row = by_name.get(name)
        if row and row["ratio"] is not None:
            lines.append(_verdict(f"{name} driver ≥ {goal:.0%} of the baseline", row["ratio"] >= goal, f"{row['ratio']:.0%}"))
        else:
            lines.append(f"- {name} driver ≥ {goal:.0%} of the baseline: not measured")
    memory = by_name.get("memory")
    if memory and memory["half_p99_ms"] is not None:
        lines.append(_verdict(f"p99 ≤ {HALF_RATE_P99_MS:g} ms at half the maximum throughput (memory)",
                              memory["half_p99_ms"] <= HALF_RATE_P99_MS, f"{memory['half_p99_ms']:.1f} ms"))
    idle = results.get("idle_sessions")
    if idle:
        per = idle["bytes_per_session_rss"]
        lines.append(_verdict(f"≤ {IDLE_SESSION_BYTES} bytes per idle session (memory driver)",
                              per <= IDLE_SESSION_BYTES, f"{per:.0f} B (RSS), {idle['bytes_per_session_traced']:.0f} B (tracemalloc)"))
    return lines


def _verdict(what: str, met: bool, figure: str) -> str:
    return f"- {what}: {figure} — {'met' if met else 'MISSED'}"


def print_table(results: dict[str, Any]) -> None:
    m = results["machine"]
    s = results["settings"]
    pinning = s.get("pinning")
    pinned = (f"server pinned to core {','.join(map(str, pinning['server']))}, load generator and fake API to "
              f"{','.join(map(str, pinning['load']))}" if pinning else "not pinned")
    node = f", Node {m['node']}" if m.get("node") else ""
    print(f"\n{m['cpu']}, {m['nproc']} cores, Python {m['python']}{node}; {s['users']} users, {s['connections']} in flight, "
          f"{s['warmup']:g}+{s['duration']:g} s per run; {pinned}\n")
    print(table(results["rows"]))
    idle = results.get("idle_sessions")
    if idle:
        print(f"\nidle sessions (memory driver, {idle['sessions']:,} sessions after one message each): "
              f"{idle['bytes_per_session_rss']:.0f} B each by RSS, {idle['bytes_per_session_traced']:.0f} B by tracemalloc, "
              f"record {idle['record_bytes']} B serialised")
    print("\ntargets:")
    print("\n".join(targets(results)))
