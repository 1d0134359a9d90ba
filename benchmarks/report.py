"""The benchmark's table, acceptance checks and bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.worker import TASK_TITLES, TOOLS

OURS = ("cloudfits-index", "cloudfits-open")


def _latencies(results: dict[str, Any]) -> list[str]:
    return [str(lat) for lat in results["latencies_ms"] if str(lat) in results]


def _best_peer(tools: dict[str, Any]) -> tuple[str, float] | None:
    peers = [(t, e["seconds"]) for t, e in tools.items() if t not in OURS]
    return min(peers, key=lambda p: p[1]) if peers else None


def table(results: dict[str, Any]) -> str:
    """An RST table per latency: requests, bytes, seconds, speed-up vs the best peer.

    The speed-up of a cloudfits row is the best peer's seconds over its own; the best
    peer (fastest of astropy and astrocut) is marked.
    """
    header = (
        "task",
        "tool",
        "requests",
        "round trips",
        "bytes",
        "seconds",
        "client CPU",
        "speed-up",
    )
    blocks = []
    for lat in _latencies(results):
        rows: list[tuple[str, ...]] = []
        for task, tools in results[lat].items():
            best = _best_peer(tools)
            title = TASK_TITLES[task]
            for tool in TOOLS:
                if tool not in tools:
                    continue
                e = tools[tool]
                speed = ""
                if best is not None and tool in OURS:
                    speed = f"{best[1] / e['seconds']:.1f}x"
                elif best is not None and tool == best[0]:
                    speed = "best peer"
                rows.append(
                    (
                        title,
                        tool + ("" if e["ok"] else " (WRONG)"),
                        f"{e['requests']:,}",
                        f"{e['round_trips']}",
                        f"{e['bytes']:,}",
                        f"{e['seconds']:.3f}",
                        f"{e['cpu']:.3f}" if "cpu" in e else "",
                        speed,
                    )
                )
                title = ""
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        rule = "  ".join("=" * w for w in widths)

        def line(cells: tuple[str, ...], w: list[int] = widths) -> str:
            return "  ".join(c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()

        body = [rule, line(header), rule, *(line(r) for r in rows), rule]
        blocks.append(f"Added latency {float(lat):.0f} ms per request:\n\n" + "\n".join(body))
    return "\n\n".join(blocks)


def acceptance(results: dict[str, Any]) -> list[str]:
    """The targets, checked at the highest latency measured."""
    lat = max(_latencies(results), key=float)
    r = results[lat]
    ideal = results["ideal"]
    out = [f"Targets at {float(lat):.0f} ms:"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    cut = r.get("cutout", {})
    ours = cut.get("cloudfits-index")
    if ours:
        out.append(
            f"  {verdict(ours['requests'] <= ideal['cutout']['runs'])} indexed cutout requests"
            f" {ours['requests']} <= {ideal['cutout']['runs']} runs"
        )
        ratio = ours["bytes"] / ideal["cutout"]["bytes"]
        out.append(f"  {verdict(ratio <= 1.02)} indexed cutout bytes {ratio:.3f}x ideal")
        for peer, need in (("astrocut-8", 8.0),):
            if peer in cut:
                x = cut[peer]["seconds"] / ours["seconds"]
                out.append(f"  {verdict(x >= need)} indexed cutout {x:.1f}x faster than {peer}")
        astropy = [e["seconds"] for t, e in cut.items() if t.startswith("astropy")]
        if astropy:
            x = min(astropy) / ours["seconds"]
            out.append(f"  {verdict(x >= 5)} indexed cutout {x:.1f}x faster than best astropy")
    opened = cut.get("cloudfits-open")
    if opened:
        out.append(
            f"  {verdict(opened['round_trips'] <= 3)} open+cutout dependent round trips"
            f" {opened['round_trips']} (open <= 2, cutout 1)"
        )
        if "astrocut-8" in cut:
            x = cut["astrocut-8"]["seconds"] / opened["seconds"]
            out.append(f"  {verdict(x >= 3)} open+cutout {x:.1f}x faster than astrocut-8")
    cols = r.get("columns", {}).get("cloudfits-index")
    if cols:
        ratio = cols["bytes"] / ideal["columns"]["column_bytes"]
        out.append(f"  {verdict(ratio <= 1.1)} two columns: bytes {ratio:.3f}x the columns' bytes")
    idx = r.get("indexing", {}).get("cloudfits-index")
    if idx:
        deepest = ideal["indexing"]["deepest"]
        round_trip = float(lat) / 1000
        limit = 3 * deepest * round_trip
        out.append(
            f"  {verdict(idx['seconds'] <= limit)} indexing {ideal['indexing']['objects']} objects:"
            f" {idx['seconds']:.3f} s <= 3 x {deepest} HDUs x {round_trip * 1000:.0f} ms"
            f" = {limit:.3f} s ({idx['round_trips']} dependent round trips)"
        )
        floor = results.get(min(_latencies(results), key=float), {}).get("indexing", {})
        base = floor.get("cloudfits-index")
        if base is not None and base is not idx:
            out.append(
                f"       same at the lowest latency: {base['seconds']:.3f} s for"
                f" {base['requests']} requests (the store's and proxy's throughput here);"
                f" client CPU {idx.get('cpu', float('nan')):.3f} s"
            )
        hdus = ideal["indexing"]["hdus"]
        if hdus:
            per = idx["bytes"] / hdus
            out.append(f"  {verdict(per < 65536)} indexing: {per:,.0f} bytes per HDU")
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    """Bar chart of the median seconds, one panel per latency, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lats = _latencies(results)
    fig, axes = plt.subplots(len(lats), 1, figsize=(11, 4 * len(lats)), squeeze=False)
    for ax, lat in zip(axes[:, 0], lats, strict=True):
        tasks = list(results[lat])
        width = 0.8 / len(TOOLS)
        for i, tool in enumerate(TOOLS):
            xs = [k + i * width for k, t in enumerate(tasks) if tool in results[lat][t]]
            ys = [results[lat][t][tool]["seconds"] for t in tasks if tool in results[lat][t]]
            if xs:
                ax.bar(xs, ys, width, label=tool)
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(tasks))])
        ax.set_xticklabels([TASK_TITLES[t] for t in tasks], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("seconds (median)")
        ax.set_title(f"{float(lat):.0f} ms added latency per request")
    axes[0, 0].legend(fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
