"""
Draw bench/out/ratios.png from the benchmark's JSON: for each scenario, each
server's result divided by autobahn's in the same run (per server
CPU-second; for memory, the open-loop latency and the suite's wall time,
lower is better and the ratio is inverted so that higher always means
better).

Usage: python chart.py results.json ratios.png
"""

import json
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


#: The metric drawn for the kinds of scenario where lower is better (the
#: others: per server CPU-second).
LOWER_IS_BETTER = {"idle": "bytes_per_conn", "openloop": "p50_us"}


def main(source, target):
    results = json.load(open(source))
    names = [n for n in results["table"][0][2:]]
    groups = []  # (label, {server: ratio})
    for key, entry in results["scenarios"].items():
        cells = entry["servers"]
        base = cells.get("autobahn", {})
        metric = LOWER_IS_BETTER.get(entry["kind"], "per_cpu")
        ref = base.get(metric)
        if not ref:
            continue
        ratios = {}
        for name in names:
            value = cells.get(name, {}).get(metric)
            if value:
                ratios[name] = ref / value if metric != "per_cpu" else value / ref
        label = textwrap.fill(entry["title"], 24)
        groups.append((label, ratios))
    suite = results.get("suite") or {}
    if suite.get("autobahn") and suite.get("wsproto_tw"):
        groups.append(
            ("Autobahn suite\nwall time", {n: suite["autobahn"]["seconds"] / suite[n]["seconds"] for n in suite})
        )
    # A colour per server (its column in the table); only servers with a
    # bar get one and a legend entry.
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    names = [name for name in names if any(name in ratios for _, ratios in groups)]
    fig, ax = plt.subplots(figsize=(max(10, 1.3 * len(groups)), 6))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys = [], []
        for g, (_, ratios) in enumerate(groups):
            if name in ratios:
                xs.append(g + (i - (len(names) - 1) / 2) * width)
                ys.append(ratios[name])
        ax.bar(xs, ys, width, label=name, color=colours[name])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=7)
    ax.set_ylabel("ratio to autobahn (per server CPU-second; higher is better)")
    env = results["environment"]
    ax.set_title(f"wsproto_tw benchmark, {env['date']}: ratios to autobahn {env['autobahn']}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


main(sys.argv[1], sys.argv[2])
