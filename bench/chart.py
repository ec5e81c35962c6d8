#!/usr/bin/python3
"""Draws bench/fpm.sh's results (a .tsv) as a PNG beside it: req/s and p99 per handler, for new and
existing sessions. Uses Debian's python3-matplotlib (bench/fpm.sh installs it).
    /usr/bin/python3 bench/chart.py bench/results/fpm-YYYY-MM-DD.tsv [out.png]
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else src.rsplit(".", 1)[0] + ".png"
rows = [r for r in csv.DictReader(open(src), delimiter="\t") if r["part"] == "fpm"]
names = list(dict.fromkeys(r["name"] for r in rows))
val = {(r["name"], r["workload"]): (float(r["req_s"]), float(r["p99_ms"])) for r in rows}

fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(names) + 2.0), sharey=True)
y = range(len(names))
h = 0.38
for ax, idx, title in ((axes[0], 0, "requests/s (higher is better)"), (axes[1], 1, "p99 latency, ms (lower is better)")):
    for off, workload, color in ((-h / 2, "new", "#4c72b0"), (h / 2, "existing", "#dd8452")):
        xs = [val.get((n, workload), (0, 0))[idx] for n in names]
        bars = ax.barh([i + off for i in y], xs, height=h, color=color, label=f"{workload} sessions")
        for b, x in zip(bars, xs):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {x:,.0f}" if idx == 0 else f" {x:.2f}",
                    va="center", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.15)
axes[0].set_yticks(list(y))
axes[0].set_yticklabels(names, fontsize=8)
axes[0].invert_yaxis()
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=2, frameon=False)
fig.suptitle("Session cycle through nginx + php-fpm (bench/fpm.sh)", fontsize=11)
fig.tight_layout(rect=(0, 0.06, 1, 1))
fig.savefig(out, dpi=110)
print(out)
