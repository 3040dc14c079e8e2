#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of scripts/bench-report.py: a bench CSV with known figures
goes in, and the medians, spreads, ratios, read-miss shares and issue-8
target verdicts of the JSON, the tables, the SVG plot and the markdown of
docs/performance.md must come out as computed by hand.

usage: test_bench_report.py   (python3 unittest; no guest, no fio)
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "..", "..", "scripts", "bench-report.py")
KERNEL = "6.12.118+deb12-amd64"
HEADER = ["kernel", "device", "workload", "round", "iops", "bw_kib_s",
          "lat_mean_us", "lat_p99_us", "lat_p999_us", "read_kib",
          "backing_read_kib", "backing_write_kib"]

# (workload, device): IOPS of rounds 1-3; mean, p99 and p99.9 latency
# (round N adds N * N to each); read KiB and backing disk read KiB per round
# ("" for none).
RUNS = {
    ("randwrite-qd1", "pmem"): ([100000, 90000, 130000], (8, 20, 100), 0, ""),
    ("randwrite-qd1", "backing"): ([3000, 2000, 4000], (300, 600, 900), 0, ""),
    ("randwrite-qd1", "pcache0"): ([60000, 70000, 41000], (15, 40, 60), 0, 0),
    ("randwrite-qd1", "dm-writecache"): ([65000, 55000, 75000], (13, 30, 90),
                                         0, 0),
    ("randwrite-qd1", "bcache"): ([20000, 10000, 30000], (50, 200, 900), 0, 0),
    ("randwrite-qd1-2j", "pmem"): ([150000, 140000, 160000], (12, 30, 200),
                                   0, ""),
    ("randwrite-qd1-2j", "pcache0"): ([90000, 100000, 80000], (20, 50, 80),
                                      0, 0),
    ("randread-qd1", "pmem"): ([80000, 84000, 79000], (12, 25, 60), 1000, ""),
    ("randread-qd1", "pcache0"): ([76000, 70000, 74400], (13, 26, 61),
                                  1000, 100),
}


def write_csv(path, runs=RUNS):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for (workload, device), (iops, lat, read, bread) in runs.items():
            for rnd, value in enumerate(iops, 1):
                # Uneven rounds, so that a mean would not pass for the
                # median.
                w.writerow([KERNEL, device, workload, rnd, value, value * 4,
                            lat[0] + rnd * rnd, lat[1] + rnd * rnd,
                            lat[2] + rnd * rnd, read, bread,
                            "" if bread == "" else 64 * rnd * rnd])


def run_report(*args):
    return subprocess.run([sys.executable, REPORT] + list(args),
                          capture_output=True, text=True, check=False)


class BenchReport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.csv = os.path.join(self.tmp.name, "bench.csv")
        self.svg = os.path.join(self.tmp.name, "bench.svg")
        write_csv(self.csv)

    def tearDown(self):
        self.tmp.cleanup()

    def report(self):
        res = run_report(self.csv, self.svg)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(self.csv[:-4] + ".json") as f:
            return res.stdout, json.load(f)

    def test_medians_and_spreads(self):
        _, js = self.report()
        self.assertEqual(js["kernel"], KERNEL)
        self.assertEqual(js["reference"], "pmem")
        s = js["workloads"]["randwrite-qd1"]["pmem"]
        self.assertEqual((s["iops"], s["low"], s["high"], s["rounds"]),
                         (100000, 90000, 130000, 3))
        self.assertEqual(s["bw_kib_s"], 400000)
        # Latencies of rounds 1-3 are base + 1, 4, 9: the median is base + 4.
        self.assertEqual((s["lat_mean_us"], s["lat_p99_us"],
                          s["lat_p999_us"]), (12, 24, 104))
        self.assertIsNone(s["backing_read_share"])
        self.assertIsNone(s["backing_write_kib"])
        s = js["workloads"]["randwrite-qd1"]["pcache0"]
        self.assertEqual((s["iops"], s["low"], s["high"]),
                         (60000, 41000, 70000))
        self.assertEqual(s["backing_write_kib"], 256)

    def test_read_share(self):
        _, js = self.report()
        # 300 KiB of 3000 read came from the disk.
        s = js["workloads"]["randread-qd1"]["pcache0"]
        self.assertAlmostEqual(s["backing_read_share"], 0.1)
        self.assertIsNone(js["workloads"]["randread-qd1"]["pmem"]
                          ["backing_read_share"])

    def test_targets(self):
        out, js = self.report()
        got = {t["target"]: (round(t["measured"], 4), t["met"])
               for t in js["targets"]}
        self.assertEqual(got["4 KiB randwrite QD1: pcache / raw pmem"],
                         (0.6, False))
        self.assertEqual(got["4 KiB randwrite QD1: pcache / bcache"],
                         (3.0, True))
        self.assertEqual(got["4 KiB randwrite QD1: pcache / dm-writecache"],
                         (round(60000 / 65000, 4), False))
        self.assertEqual(got["4 KiB randread hits QD1: pcache / raw pmem"],
                         (0.93, True))
        # Raw pmem scales 1.50x with two jobs, pcache exactly as much.
        self.assertEqual(got["randwrite 2 jobs / 1 job: pcache vs raw pmem's"
                             " 1.50"], (1.5, True))
        # p99.9 / mean of pcache's QD1 writes: 64 / 19; raw pmem's 104 / 12.
        self.assertEqual(got["randwrite-qd1 p99.9/mean latency, pcache"
                             " (raw pmem: 8.7)"], (round(64 / 19, 4), False))
        self.assertIn("NOT met", out)
        self.assertNotIn("randread 2 jobs", " ".join(got))

    def test_tables(self):
        out, _ = self.report()
        line = [ln for ln in out.splitlines()
                if ln.startswith("randread-qd1 ") and " pcache0 " in ln][0]
        self.assertIn("74400 [  70000-  76000]", line)
        self.assertTrue(line.rstrip().endswith("10%"), line)
        # pcache's ratio to each peer: 60000 / 20000 for bcache.
        peers = [ln for ln in out.splitlines()
                 if ln.startswith("randwrite-qd1 ") and ln.count("x") >= 3]
        self.assertEqual(len(peers), 1)
        self.assertIn("3.00x", peers[0])

    def test_plot(self):
        self.report()
        root = ET.parse(self.svg).getroot()
        self.assertTrue(root.tag.endswith("svg"))
        text = " ".join(t.text or "" for t in root.iter()
                        if t.tag.endswith("text"))
        for name in ("randwrite-qd1", "randread-qd1", "pcache0", "bcache"):
            self.assertIn(name, text)

    def test_markdown(self):
        res = run_report("--markdown", self.csv)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0], "| workload | pmem | backing | pcache0 |"
                         " dm-writecache | bcache |")
        row = [ln for ln in lines if ln.startswith("| randread-qd1 |")][0]
        self.assertIn("74400 [70000-76000] 93%, 10% from disk", row)
        self.assertIn("| - |", row)
        lat = [ln for ln in lines if ln.startswith("| randwrite-qd1 |")][1]
        self.assertIn("12.0 / 24 / 104", lat)

    def test_replay(self):
        replay = os.path.join(self.tmp.name, "bench-replay.csv")
        with open(replay, "w") as f:
            f.write("kernel,backing,keys,segments,replay_us,cached_kib,"
                    "extents\n%s,backing1,262144,300,524288,1048576,"
                    "200000\n" % KERNEL)
        res = run_report(self.csv, self.svg, replay)
        self.assertEqual(res.returncode, 0, res.stderr)
        # 524.3 ms for 1 GiB cached, 2 us per key.
        self.assertRegex(res.stdout, r"backing1 +262144 keys, +1024.0 MiB "
                         r"cached in +200000 extents: +524.3 ms = +524 ms "
                         r"per GiB cached, +2.00 us per key")

    def test_no_results(self):
        write_csv(self.csv, {})
        res = run_report(self.csv, self.svg)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("no results", res.stderr)


if __name__ == "__main__":
    unittest.main()
