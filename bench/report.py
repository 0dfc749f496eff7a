"""From runs to rows (medians when the plan was repeated) and the printed table with the targets."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from bench.scenarios import Row

TARGETS = {"memory": 0.70, "redis": 0.50}
INBOX_REPLIES_RATIO = 0.95
"""Replies per second with the inbox, at least this share of the answer-after row's on the same driver."""
HALF_RATE_P99_MS = 20.0
IDLE_SESSION_BYTES = 2048


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(rows: list[Row], runs: list[dict[str, Any]], skipped: dict[str, str], *, load: str = "closed",
              baselines: bool = True) -> list[dict[str, Any]]:
    """One entry per baseline worker count (``baselines``) and per row, in table order; the figures of each
    run's ``load`` ("closed", or "open" for the slow-handler table), the half-rate run's beside them."""
    found = [Row(None, workers) for workers in sorted({run["workers"] for run in runs
                                                       if run["driver"] is None and run["variant"] is None})]
    summary = []
    for row in (found if baselines else []) + rows:
        mine = [run for run in runs if run["row"] == row.name]
        entry: dict[str, Any] = {"row": row.name, "driver": row.driver, "workers": row.workers, "variant": row.variant,
                                 "peer": row.peer, "ack_within": row.ack_within, "handler_ms": row.handler_ms}
        if row.name in skipped or not mine:
            entry["status"] = skipped.get(row.name, "not run")
            summary.append(entry)
            continue
        halves = [run["half"] for run in mine if "half" in run]
        loads = [run[load] for run in mine]
        entry.update(
            status="ok",
            runs=len(mine),
            rps=_median(one["rps"] for one in loads),
            p50_ms=_median(one["latency_ms"]["p50"] for one in loads),
            p99_ms=_median(one["latency_ms"]["p99"] for one in loads),
            ratio=_median(run.get("ratio") for run in mine),
            replies_ratio=_median(run.get("replies_ratio") for run in mine),
            half_rate=_median(half["rate"] for half in halves),
            half_p50_ms=_median(half["latency_ms"]["p50"] for half in halves),
            half_p99_ms=_median(half["latency_ms"]["p99"] for half in halves),
            cpu_us_per_request=_median(one["server_cpu_us_per_request"] for one in loads),
            store_cpu_us_per_request=_median(one.get("store_cpu_us_per_request") for one in loads),
            peak_rss_mb=max(run["peak_rss_bytes"] for run in mine) / 2**20,
            replies_per_request=_median(one["replies_per_request"] for one in loads),
            other_cpu_cores=max(one["other_cpu_cores"] for one in loads),
            errors=sum(one["requests"] - one["ok"] for one in loads),
            increments=_increments(mine),
            replies_rps=_median(one.get("replies_rps") for one in loads),
            e2e_p50_ms=_median(one.get("e2e_ms", {}).get("p50") for one in loads),
            e2e_p99_ms=_median(one.get("e2e_ms", {}).get("p99") for one in loads),
            e2e=_e2e_counts(loads),
        )
        summary.append(entry)
    return summary


def _e2e_counts(loads: list[dict[str, Any]]) -> dict[str, int] | None:
    """Requests matched to a reply, without one, and replies repeated or beyond the requests, summed."""
    found = [one["e2e"] for one in loads if "e2e" in one]
    if not found:
        return None
    return {key: sum(counts[key] for counts in found) for key in ("matched", "missing", "duplicates", "extra")}


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


def inbox_pairs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(answer-after row, inbox row) of each driver and worker count with both measured."""
    after = {(row["driver"], row["workers"]): row for row in rows
             if row["status"] == "ok" and row["ack_within"] is None and row["driver"] and not row["variant"]
             and not row["peer"]}
    return [(after[key], row) for row in rows
            if row["status"] == "ok" and row["ack_within"] is not None and (key := (row["driver"], row["workers"])) in after]


def _replies_ratio(after: dict[str, Any], inbox: dict[str, Any], key: str = "replies_ratio") -> float | None:
    """The inbox row's replies per second over the answer-after row's: each first taken over the baselines
    run beside it (``replies_ratio``, the default: the machine's drift cancels as in "vs baseline"), or
    as measured (``replies_rps``)."""
    if not after.get(key) or inbox.get(key) is None:
        return None
    ratio: float = inbox[key] / after[key]
    return ratio


def _share(after: dict[str, Any], inbox: dict[str, Any]) -> str:
    """Both ratios: over the baselines (bold), and as measured."""
    beside, raw = _replies_ratio(after, inbox), _replies_ratio(after, inbox, "replies_rps")
    if beside is None and raw is None:
        return "–"
    if beside is None:
        return f"{100 * raw:.1f}% as measured"  # type: ignore[operator]
    return f"**{100 * beside:.1f}%**" + ("" if raw is None else f" ({100 * raw:.1f}%)")


def _cpu_share(after: dict[str, Any], inbox: dict[str, Any]) -> str:
    """What the inbox row's replies/s would be beside the answer-after row's if the server's core were the
    only limit: the answer-after row's CPU per request over the inbox row's (the server's processes only).
    Steadier than throughput on a shared machine: other processes' bursts slow a server, not its CPU time."""
    if not after.get("cpu_us_per_request") or not inbox.get("cpu_us_per_request"):
        return "–"
    return f"{100 * after['cpu_us_per_request'] / inbox['cpu_us_per_request']:.1f}%"


def _e2e(row: dict[str, Any], key: str) -> str:
    """An end-to-end percentile, or why there is none: replies that repeat a count cannot be matched."""
    counts = row.get("e2e")
    if counts is None:
        return "–"
    if counts["duplicates"]:
        return "– (counts repeat)"
    return _fmt(row.get(key), ".1f")


def inbox_table(rows: list[dict[str, Any]]) -> str:
    """The inbox rows beside the answer-after rows of their drivers: the webhook's latency, the reply's,
    and replies per second."""
    lines = [
        "| row | server.ack_within | webhook p50 ms | webhook p99 ms | end-to-end p50 ms | end-to-end p99 ms "
        "| replies/s | inbox / answer-after, replies/s | the same from CPU µs/req | server CPU µs/req | lost increments |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for after, inbox in inbox_pairs(rows):
        for row in (after, inbox):
            cpu = _fmt(row["cpu_us_per_request"], ".0f")
            if row["store_cpu_us_per_request"] is not None:
                cpu += f" (+{row['store_cpu_us_per_request']:.0f} in {row['driver']})"
            missing = (row.get("e2e") or {}).get("missing")
            replies = _fmt(row.get("replies_rps"), ".0f") + (f" ({missing} without reply)" if missing else "")
            share = "–" if row is after else _share(after, inbox)
            by_cpu = "–" if row is after else _cpu_share(after, inbox)
            ack = "None" if row["ack_within"] is None else f"{row['ack_within']:g}"
            lines.append(
                f"| {row['row']} | {ack} | {_fmt(row['p50_ms'], '.1f')} | {_fmt(row['p99_ms'], '.1f')} "
                f"| {_e2e(row, 'e2e_p50_ms')} | {_e2e(row, 'e2e_p99_ms')} | {replies} | {share} | {by_cpu} | {cpu} "
                f"| {_lost(row.get('increments'))} |")
    return "\n".join(lines)


def handler_table(handler: dict[str, Any]) -> str:
    """The slow-handler runs: the webhook's latency against the reply's."""
    lines = [
        "| row | server.ack_within | webhook p50 ms | webhook p99 ms | end-to-end p50 ms | end-to-end p99 ms "
        "| replies/s | server CPU µs/req | lost increments |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in handler["rows"]:
        if row["status"] != "ok":
            lines.append(f"| {row['row']} | {row['status']} | | | | | | | |")
            continue
        ack = "None" if row["ack_within"] is None else f"{row['ack_within']:g}"
        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        lines.append(
            f"| {row['row']}{errors} | {ack} | {_fmt(row['p50_ms'], '.1f')} | {_fmt(row['p99_ms'], '.1f')} "
            f"| {_e2e(row, 'e2e_p50_ms')} | {_e2e(row, 'e2e_p99_ms')} | {_fmt(row.get('replies_rps'), '.0f')} "
            f"| {_fmt(row['cpu_us_per_request'], '.0f')} | {_lost(row.get('increments'))} |")
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
    for after, inbox in inbox_pairs(results["rows"]):
        ratio = _replies_ratio(after, inbox)
        if ratio is None:
            ratio = _replies_ratio(after, inbox, "replies_rps")
        what = f"{inbox['row']}: replies/s ≥ {INBOX_REPLIES_RATIO:.0%} of {after['row']}'s"
        lines.append(f"- {what}: not measured" if ratio is None
                     else _verdict(what, ratio >= INBOX_REPLIES_RATIO,
                                   f"{100 * ratio:.1f}% (from CPU per request: {_cpu_share(after, inbox)})"))
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
    if inbox_pairs(results["rows"]):
        print("\nanswer first: the inbox rows beside the answer-after rows of their drivers (closed loop; end to end: "
              "webhook sent → reply at the fake API; inbox / answer-after: replies/s each over the baselines beside "
              "it, as measured in brackets; from CPU: answer-after's server CPU per request over the inbox row's)\n")
        print(inbox_table(results["rows"]))
    idle = results.get("idle_sessions")
    if idle:
        print(f"\nidle sessions (memory driver, {idle['sessions']:,} sessions after one message each): "
              f"{idle['bytes_per_session_rss']:.0f} B each by RSS, {idle['bytes_per_session_traced']:.0f} B by tracemalloc, "
              f"record {idle['record_bytes']} B serialised")
    print("\ntargets:")
    print("\n".join(targets(results)))


def print_handler_table(results: dict[str, Any]) -> None:
    handler = results["handler"]
    print(f"\nthe handler sleeps {handler['handler_ms']} ms: open loop at {handler['rate']:.0f} requests/s, "
          f"{results['settings']['connections']} connections; the inbox rows with server.ack_within "
          f"{handler['ack_within']:g}\n")
    print(handler_table(handler))
