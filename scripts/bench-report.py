#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise a scripts/bench.sh CSV: tables on stdout, a JSON summary and an
SVG plot.

usage: bench-report.py RESULTS.csv PLOT.svg [REPLAY.csv]
       bench-report.py --markdown RESULTS.csv

For each workload and device: the median IOPS over the rounds with the
spread (lowest and highest round), the median bandwidth and mean, p99 and
p99.9 latencies, the ratio to the reference (raw pmem: the first device of
the CSV), and for caches the share of the data read that the backing disk
had to provide (a read hit reaches it not at all).  Then pcache's IOPS as
a ratio to every other device, and the issue-8 targets against the
measured figures.  The summary goes to RESULTS.json next to the CSV.
With --markdown, the tables of docs/performance.md instead.
"""
import csv
import json
import math
import statistics
import sys
from collections import OrderedDict

PCACHE = "pcache0"
FIELDS = ("iops", "bw_kib_s", "lat_mean_us", "lat_p99_us", "lat_p999_us")


def load(path):
    runs = OrderedDict()
    kernel = None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            kernel = row["kernel"]
            runs.setdefault(row["workload"], OrderedDict()).setdefault(
                row["device"], []).append(row)
    return kernel, runs


def summarise(runs):
    out = OrderedDict()
    for workload, devs in runs.items():
        for device, rows in devs.items():
            iops = [float(r["iops"]) for r in rows]
            s = {"rounds": len(rows), "low": min(iops), "high": max(iops)}
            for f in FIELDS:
                s[f] = statistics.median(float(r[f]) for r in rows)
            # Devices without a backing disk (raw pmem, the raw disk)
            # leave its counters empty.
            has_backing = all(r.get("backing_read_kib") for r in rows)
            read = sum(int(r.get("read_kib") or 0) for r in rows)
            bread = sum(int(r["backing_read_kib"]) for r in rows
                        if has_backing)
            s["backing_read_share"] = (bread / read if read and has_backing
                                       else None)
            s["backing_write_kib"] = (statistics.median(
                int(r["backing_write_kib"]) for r in rows)
                if has_backing else None)
            out.setdefault(workload, OrderedDict())[device] = s
    return out


def devices_of(summary):
    devices = []
    for devs in summary.values():
        for d in devs:
            if d not in devices:
                devices.append(d)
    return devices


def ratio(a, b):
    return a / b if b else float("nan")


def table(kernel, summary):
    devices = devices_of(summary)
    ref = devices[0]
    print("kernel %s; median of the rounds [lowest-highest IOPS]; ratio to %s;"
          " 'from backing' is the share of the data read that the backing"
          " disk provided (misses)" % (kernel, ref))
    print("%-22s %-14s %26s %9s %9s %9s %10s %7s %8s" %
          ("workload", "device", "IOPS", "MiB/s", "mean us", "p99 us",
           "p99.9 us", "ratio", "from bk"))
    for workload, devs in summary.items():
        refv = devs.get(ref, {}).get("iops")
        for dev, s in devs.items():
            share = s["backing_read_share"]
            print("%-22s %-14s %8.0f [%7.0f-%7.0f] %9.1f %9.1f %9.1f %10.1f"
                  " %6.0f%% %8s" %
                  (workload, dev, s["iops"], s["low"], s["high"],
                   s["bw_kib_s"] / 1024, s["lat_mean_us"], s["lat_p99_us"],
                   s["lat_p999_us"], 100 * ratio(s["iops"], refv),
                   "-" if share is None else "%.0f%%" % (100 * share)))
    peers = [d for d in devices if d != PCACHE]
    if PCACHE not in devices:
        return
    print()
    print("%s's median IOPS as a ratio to each device's" % PCACHE)
    print("%-22s" % "workload" + "".join(" %14s" % p for p in peers))
    for workload, devs in summary.items():
        if PCACHE not in devs:
            continue
        mine = devs[PCACHE]["iops"]
        print("%-22s" % workload + "".join(
            " %13.2fx" % ratio(mine, devs[p]["iops"]) if p in devs else
            " %14s" % "-" for p in peers))


def targets(summary):
    """The issue-8 targets, with the measured figures."""
    def get(workload, dev, field="iops"):
        return summary.get(workload, {}).get(dev, {}).get(field)

    out = []

    def check(name, value, goal, met):
        out.append({"target": name, "measured": value, "goal": goal,
                    "met": met})

    pc, pm = get("randwrite-qd1", PCACHE), get("randwrite-qd1", "pmem")
    if pc and pm:
        check("4 KiB randwrite QD1: pcache / raw pmem", pc / pm, ">= 0.90",
              pc / pm >= 0.9)
    for peer, goal in (("bcache", 1.5), ("dm-writecache", 1.0)):
        p = get("randwrite-qd1", peer)
        if pc and p:
            check("4 KiB randwrite QD1: pcache / %s" % peer, pc / p,
                  ">= %.2f" % goal, pc / p >= goal)
    pc, pm = get("randread-qd1", PCACHE), get("randread-qd1", "pmem")
    if pc and pm:
        check("4 KiB randread hits QD1: pcache / raw pmem", pc / pm,
              ">= 0.90", pc / pm >= 0.9)
    for kind in ("randwrite", "randread"):
        one, two = "%s-qd1" % kind, "%s-qd1-2j" % kind
        pc1, pc2 = get(one, PCACHE), get(two, PCACHE)
        pm1, pm2 = get(one, "pmem"), get(two, "pmem")
        if pc1 and pc2 and pm1 and pm2:
            check("%s 2 jobs / 1 job: pcache vs raw pmem's %.2f" %
                  (kind, pm2 / pm1), pc2 / pc1, ">= %.2f" % (pm2 / pm1),
                  pc2 / pc1 >= pm2 / pm1)
    for workload in ("randwrite-qd1", "randwrite-qd1-2j"):
        mean = get(workload, PCACHE, "lat_mean_us")
        p999 = get(workload, PCACHE, "lat_p999_us")
        pm_mean = get(workload, "pmem", "lat_mean_us")
        pm_p999 = get(workload, "pmem", "lat_p999_us")
        if mean and p999:
            # Raw pmem's own tail shows what the machine adds (noise).
            check("%s p99.9/mean latency, pcache (raw pmem: %s)" %
                  (workload, "%.1f" % (pm_p999 / pm_mean) if pm_mean and
                   pm_p999 else "-"), p999 / mean, "<= 3", p999 / mean <= 3)
    return out


def print_targets(results):
    if not results:
        return
    print()
    print("issue-8 targets")
    for t in results:
        print("  %-62s %6.2f  (goal %s) %s" %
              (t["target"], t["measured"], t["goal"],
               "met" if t["met"] else "NOT met"))


COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
           "#edc948"]


def plot(kernel, summary, path):
    """Grouped bars, one group per workload, IOPS on a log scale (the
    backing disk is two orders of magnitude below pmem), with each bar's
    spread and its ratio to the reference above it."""
    workloads = list(summary)
    devices = devices_of(summary)
    ref = devices[0]
    lows = [s["low"] for devs in summary.values() for s in devs.values()
            if s["low"] > 0]
    highs = [s["high"] for devs in summary.values() for s in devs.values()]
    lo = 10 ** math.floor(math.log10(min(lows))) if lows else 1
    hi = 10 ** math.ceil(math.log10(max(highs))) if highs else 10
    if hi <= lo:
        hi = lo * 10
    group_w = 34 + 16 * len(devices)
    left, right, bottom, topm = 70, 20, 130, 50
    width = left + right + group_w * len(workloads)
    height = 480
    plot_h = height - bottom - topm
    bar_w = (group_w - 14) / len(devices)

    def y(v):
        v = min(max(v, lo), hi)
        return topm + plot_h * (1 - math.log10(v / lo) / math.log10(hi / lo))

    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">pcache and its peers (kernel '
           '%s): IOPS, median of the rounds, line = spread, log scale; '
           'label = %% of %s</text>' % (left, kernel, ref)]
    decade = lo
    while decade <= hi:
        for m in (1, 2, 5):
            v = decade * m
            if v > hi:
                break
            svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" '
                       'stroke="%s"/>' % (left, width - right, y(v), y(v),
                                          "#bbb" if m == 1 else "#eee"))
            label = "%gK" % (v / 1000) if v >= 1000 else "%g" % v
            svg.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                       % (left - 5, y(v) + 4, label))
        decade *= 10
    for g, workload in enumerate(workloads):
        x0 = left + g * group_w + 7
        refv = summary[workload].get(ref, {}).get("iops")
        for d, dev in enumerate(devices):
            s = summary[workload].get(dev)
            if not s:
                continue
            x = x0 + d * bar_w
            svg.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                       'fill="%s"><title>%s %s: %.0f IOPS</title></rect>'
                       % (x, y(s["iops"]), bar_w - 2,
                          y(lo) - y(s["iops"]), COLOURS[d % len(COLOURS)],
                          workload, dev, s["iops"]))
            cx = x + (bar_w - 2) / 2
            svg.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" '
                       'stroke="black"/>' % (cx, cx, y(s["low"]),
                                             y(s["high"])))
            if refv:
                svg.append('<text x="%.1f" y="%.1f" font-size="8" '
                           'text-anchor="end" transform="rotate(-90 %.1f '
                           '%.1f)">%.0f%%</text>'
                           % (cx + 3, y(s["high"]) - 3, cx + 3,
                              y(s["high"]) - 3, 100 * s["iops"] / refv))
        tx = left + g * group_w + group_w / 2
        ty = height - bottom + 12
        svg.append('<text x="%.1f" y="%d" text-anchor="end" '
                   'transform="rotate(-40 %.1f %d)">%s</text>'
                   % (tx, ty, tx, ty, workload))
    for d, dev in enumerate(devices):
        svg.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (left + d * 120, height - 24, COLOURS[d % len(COLOURS)]))
        svg.append('<text x="%d" y="%d">%s</text>'
                   % (left + d * 120 + 16, height - 14, dev))
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


def replay(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print("replay: no replay lines in the console log")
        return []
    print()
    print("replay after a power cut, per backing device's log:")
    for r in rows:
        keys, us = int(r["keys"]), int(r["replay_us"])
        cached_gib = int(r["cached_kib"]) / (1 << 20)
        print("  %-9s %8d keys, %7.1f MiB cached in %7d extents: %7.1f ms"
              " = %6.0f ms per GiB cached, %5.2f us per key"
              % (r["backing"], keys, cached_gib * 1024, int(r["extents"]),
                 us / 1000, us / 1000 / cached_gib if cached_gib else 0,
                 us / keys if keys else 0))
    return rows


def markdown(kernel, summary):
    """The table of docs/performance.md: IOPS median [spread] and ratio to
    the reference, per workload (rows) and device (columns)."""
    devices = devices_of(summary)
    ref = devices[0]
    print("| workload | " + " | ".join(devices) + " |")
    print("|---" * (len(devices) + 1) + "|")
    for workload, devs in summary.items():
        refv = devs.get(ref, {}).get("iops")
        cells = []
        for d in devices:
            s = devs.get(d)
            if not s:
                cells.append("-")
                continue
            share = s["backing_read_share"]
            cells.append("%.0f [%.0f-%.0f] %.0f%%%s" % (
                s["iops"], s["low"], s["high"], 100 * ratio(s["iops"], refv),
                "" if share is None or share < 0.05 else
                ", %.0f%% from disk" % (100 * share)))
        print("| %s | %s |" % (workload, " | ".join(cells)))
    print()
    print("| workload | " + " | ".join(devices) + " |")
    print("|---" * (len(devices) + 1) + "|")
    for workload, devs in summary.items():
        print("| %s | %s |" % (workload, " | ".join(
            "%.1f / %.0f / %.0f" % (devs[d]["lat_mean_us"], devs[d]["lat_p99_us"],
                                    devs[d]["lat_p999_us"])
            if d in devs else "-" for d in devices)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        # bench-report.py --markdown RESULTS.csv: the tables for the docs.
        kernel, runs = load(sys.argv[2])
        markdown(kernel, summarise(runs))
        return
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: bench-report.py RESULTS.csv PLOT.svg [REPLAY.csv]\n"
                 "       bench-report.py --markdown RESULTS.csv")
    kernel, runs = load(sys.argv[1])
    if not runs:
        sys.exit("bench-report: no results in %s" % sys.argv[1])
    summary = summarise(runs)
    table(kernel, summary)
    results = targets(summary)
    print_targets(results)
    plot(kernel, summary, sys.argv[2])
    replayed = replay(sys.argv[3]) if len(sys.argv) == 4 else []
    out = sys.argv[1][:-4] if sys.argv[1].endswith(".csv") else sys.argv[1]
    with open(out + ".json", "w") as f:
        json.dump({"kernel": kernel, "reference": devices_of(summary)[0],
                   "workloads": summary, "targets": results,
                   "replay": replayed}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
