#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise a scripts/bench.sh CSV: a table on stdout and an SVG plot.

usage: bench-report.py RESULTS.csv PLOT.svg [REPLAY.csv]

For each workload: the median IOPS of every device over the rounds, the
spread (lowest and highest round), the mean and p99 latency medians, and
each device's ratio to raw pmem (the first device of the CSV that is not
a pcache disk is taken as the reference).
"""
import csv
import statistics
import sys
from collections import OrderedDict


def load(path):
    runs = OrderedDict()
    kernel = None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            kernel = row["kernel"]
            key = (row["workload"], row["device"])
            runs.setdefault(key, []).append(row)
    return kernel, runs


def summarise(runs):
    out = OrderedDict()
    for (workload, device), rows in runs.items():
        iops = [float(r["iops"]) for r in rows]
        out.setdefault(workload, OrderedDict())[device] = {
            "median": statistics.median(iops),
            "low": min(iops),
            "high": max(iops),
            "mean_us": statistics.median(float(r["lat_mean_us"]) for r in rows),
            "p99_us": statistics.median(float(r["lat_p99_us"]) for r in rows),
            "rounds": len(rows),
        }
    return out


def reference(devices):
    for d in devices:
        if not d.startswith("pcache"):
            return d
    return devices[0]


def table(kernel, summary):
    print("kernel %s; IOPS as median [lowest-highest] of the rounds" % kernel)
    print("%-18s %-8s %24s %10s %10s %8s" %
          ("workload", "device", "IOPS", "mean us", "p99 us", "ratio"))
    for workload, devs in summary.items():
        ref = devs[reference(list(devs))]["median"]
        for dev, s in devs.items():
            print("%-18s %-8s %8.0f [%6.0f-%6.0f] %10.1f %10.1f %7.0f%%" %
                  (workload, dev, s["median"], s["low"], s["high"],
                   s["mean_us"], s["p99_us"], 100 * s["median"] / ref))


COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"]


def plot(kernel, summary, path):
    workloads = list(summary)
    devices = []
    for devs in summary.values():
        for d in devs:
            if d not in devices:
                devices.append(d)
    top = max(s["high"] for devs in summary.values() for s in devs.values())
    width, height, left, bottom, topm = 760, 380, 70, 60, 50
    plot_h = height - bottom - topm
    group_w = (width - left - 20) / len(workloads)
    bar_w = group_w * 0.7 / len(devices)
    y = lambda v: topm + plot_h * (1 - v / top)
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">pcache vs raw pmem, 4 KiB at '
           'queue depth 1 (kernel %s): IOPS, median and spread</text>'
           % (left, kernel)]
    for i in range(5):
        v = top * i / 4
        svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                   % (left, width - 20, y(v), y(v)))
        svg.append('<text x="%d" y="%.1f" text-anchor="end">%.0fK</text>'
                   % (left - 5, y(v) + 4, v / 1000))
    for g, workload in enumerate(workloads):
        x0 = left + g * group_w + group_w * 0.15
        for d, dev in enumerate(devices):
            s = summary[workload].get(dev)
            if not s:
                continue
            x = x0 + d * bar_w
            svg.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                       'fill="%s"/>' % (x, y(s["median"]), bar_w - 2,
                                        y(0) - y(s["median"]),
                                        COLOURS[d % len(COLOURS)]))
            cx = x + (bar_w - 2) / 2
            svg.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" '
                       'stroke="black"/>' % (cx, cx, y(s["low"]), y(s["high"])))
        svg.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (left + g * group_w + group_w / 2, height - bottom + 18,
                      workload))
    for d, dev in enumerate(devices):
        svg.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (left + d * 110, height - 24, COLOURS[d % len(COLOURS)]))
        svg.append('<text x="%d" y="%d">%s</text>'
                   % (left + d * 110 + 16, height - 14, dev))
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


def replay(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print("replay: no replay lines in the console log")
        return
    print("replay after a power cut, per backing device's log:")
    for r in rows:
        keys, us = int(r["keys"]), int(r["replay_us"])
        cached_gib = int(r["cached_kib"]) / (1 << 20)
        print("  %-9s %8d keys, %7.1f MiB cached in %7d extents: %7.1f ms"
              " = %6.0f ms per GiB cached, %5.2f us per key"
              % (r["backing"], keys, cached_gib * 1024, int(r["extents"]),
                 us / 1000, us / 1000 / cached_gib if cached_gib else 0,
                 us / keys if keys else 0))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: bench-report.py RESULTS.csv PLOT.svg [REPLAY.csv]")
    kernel, runs = load(sys.argv[1])
    if not runs:
        sys.exit("bench-report: no results in %s" % sys.argv[1])
    summary = summarise(runs)
    table(kernel, summary)
    plot(kernel, summary, sys.argv[2])
    if len(sys.argv) == 4:
        replay(sys.argv[3])


if __name__ == "__main__":
    main()
