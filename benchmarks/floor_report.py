"""Tables and target checks of the full-scale benchmark (`benchmarks.floor`)."""

from __future__ import annotations

from typing import Any

from benchmarks.floor_worker import TASK_TITLES, TOOLS

PEERS = ("astrocut-8", "astropy-10kB", "astropy-default")
TARGETS = {  # task: (fresh, warm) as multiples of the floor
    "cut10": (2.0, 1.3),
    "cut50": (3.0, 1.8),
    "lightcurve": (2.5, 2.0),
    "open10": (1.5, None),
}


def _latencies(results: dict[str, Any]) -> list[str]:
    return [str(lat) for lat in results["latencies_ms"] if str(lat) in results]


def _rst(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows), rule])


def _seconds(entry: dict[str, Any] | None, floor: float | None = None) -> str:
    if entry is None:
        return ""
    text = f"{entry['seconds']:.3f}"
    if floor:
        text += f" ({entry['seconds'] / floor:.1f}x)"
    return text + ("" if entry["ok"] else " WRONG")


def table(results: dict[str, Any]) -> str:
    """Per latency: the summary (seconds, multiple of the floor) and every run's counts."""
    blocks = []
    for lat in _latencies(results):
        r = results[lat]
        summary = []
        details = []
        for task, tools in r["tasks"].items():
            floor = r["floor"][task]
            ours = tools.get("cloudfits", {})
            summary.append(
                (
                    TASK_TITLES[task],
                    _seconds(ours.get("fresh"), floor["seconds"]),
                    _seconds(ours.get("warm"), floor["seconds"]),
                    f"{floor['seconds']:.3f}",
                    *(_seconds(tools.get(p, {}).get("fresh")) for p in PEERS),
                )
            )
            for tool in TOOLS:
                for kind, e in tools.get(tool, {}).items():
                    details.append(
                        (
                            TASK_TITLES[task],
                            f"{tool} {kind}",
                            f"{e['requests']:,}",
                            f"{e['round_trips']}",
                            f"{e['bytes']:,}",
                            f"{e['seconds']:.3f}",
                            f"{e['cpu']:.3f}",
                        )
                    )
            details.append(
                (
                    TASK_TITLES[task],
                    "floor",
                    "",
                    f"{floor['round_trips']}",
                    f"{floor['bytes']:,}",
                    f"{floor['seconds']:.3f}",
                    "",
                )
            )
        head = (
            f"Added latency {float(lat):.0f} ms per request ({results['cubes']} cubes;"
            f" 1-byte GET {r['one_byte_get'] * 1000:.1f} ms, single GET"
            f" {results['bandwidth'] / 1e9:.2f} GB/s):"
        )
        blocks.append(
            head
            + "\n\n"
            + _rst(
                ("task", "cloudfits fresh", "cloudfits warm", "floor", *PEERS),
                summary,
            )
            + "\n\n"
            + _rst(
                ("task", "tool", "requests", "round trips", "bytes", "seconds", "client CPU"),
                details,
            )
        )
    return "\n\n".join(blocks)


def acceptance(results: dict[str, Any]) -> list[str]:
    """The targets of the full-scale case, at the lowest latency measured."""
    lat = min(_latencies(results), key=float)
    r = results[lat]
    out = [f"Targets at {float(lat):.0f} ms:"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    for task, (fresh, warm) in TARGETS.items():
        ours = r["tasks"].get(task, {}).get("cloudfits")
        if not ours:
            continue
        floor = r["floor"][task]["seconds"]
        for kind, limit in (("fresh", fresh), ("warm", warm)):
            if limit is None or kind not in ours:
                continue
            x = ours[kind]["seconds"] / floor
            out.append(f"  {verdict(x <= limit)} {task} {kind}: {x:.2f}x floor (<= {limit}x)")
        for peer, need in (("astrocut-8", 10.0), ("astropy", 5.0)):
            tools = r["tasks"][task]
            times = [e["fresh"]["seconds"] for t, e in tools.items() if t.startswith(peer)]
            if times:
                x = min(times) / ours["fresh"]["seconds"]
                out.append(f"  {verdict(x >= need)} {task}: {x:.1f}x faster than best {peer}")
    idx = r["tasks"].get("indexing", {})
    ours = idx.get("cloudfits", {}).get("fresh")
    if ours:
        ideal = r["floor"]["indexing"]["bytes"]
        out.append(
            f"  {verdict(ours['seconds'] <= 0.6)} indexing: {ours['seconds']:.3f} s (<= 0.6)"
        )
        out.append(
            f"  {verdict(ours['cpu'] <= 0.3)} indexing: client CPU {ours['cpu']:.3f} s (<= 0.3)"
        )
        x = ours["bytes"] / ideal
        out.append(f"  {verdict(x <= 1.5)} indexing: {x:.2f}x the ideal bytes (<= 1.5x)")
        cli = idx.get("cloudfits-cli", {}).get("fresh")
        if cli:
            d = cli["seconds"] - ours["seconds"]
            out.append(f"  {verdict(d <= 1.0)} indexing: CLI {d:+.3f} s from the API (<= 1 s)")
    if not all(
        e["ok"] for tools in r["tasks"].values() for t in tools.values() for e in t.values()
    ):
        out.append("  MISS some results were WRONG")
    return out
