#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Replay a dm-log-writes log onto a device, checking it at flush points.

The log (see the kernel's drivers/md/dm-log-writes.c) starts with a super
block: magic, version, number of entries, sector size.  Each entry takes
one sector (sector, nr_sectors, flags, data_len, then mark text) followed by
its data, nr_sectors sectors, except for discards.  Writes are logged in the
order they completed, and the ones completed before a flush appear before
its entry: replaying the log up to a flush entry gives what the device held
once that flush completed.

    logwrites.py replay LOG TARGET [--check CMD] [--max-checks N]

applies every entry to TARGET; at up to N flush entries spread evenly over
the log (always including the last one) it runs CMD, which must exit 0.
"""
import argparse
import os
import struct
import subprocess
import sys

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


def read_at(fd, off, n):
    data = os.pread(fd, n, off)
    if len(data) != n:
        sys.exit("log: short read at %d" % off)
    return data


def entries(fd):
    """Yield (index, sector, nr_sectors, flags, data offset, mark text)."""
    magic, version, nr, sectorsize = struct.unpack_from(
        "<QQQI", read_at(fd, 0, 28))
    if magic != MAGIC or version != 1:
        sys.exit("log: not a dm-log-writes log (magic %#x, version %d)" %
                 (magic, version))
    pos = sectorsize
    for i in range(nr):
        head = read_at(fd, pos, sectorsize)
        sector, nr_sectors, flags, data_len = struct.unpack_from("<QQQQ", head)
        mark = ""
        if flags & MARK:
            mark = head[32:32 + data_len].decode(errors="replace")
        pos += sectorsize
        yield (i, sector * sectorsize, nr_sectors * sectorsize, flags, pos,
               mark)
        if not flags & DISCARD:
            pos += nr_sectors * sectorsize


def replay(args):
    log = os.open(args.log, os.O_RDONLY)
    target = os.open(args.target, os.O_WRONLY)
    flushes = [e[0] for e in entries(log) if e[3] & FLUSH]
    if not flushes:
        sys.exit("log: no flush in the log")
    step = max(1, len(flushes) // args.max_checks)
    checks = set(flushes[::step][-args.max_checks:]) | {flushes[-1]}
    stats = {"writes": 0, "bytes": 0, "discards": 0, "marks": 0}
    checked = 0
    for i, off, length, flags, data, mark in entries(log):
        if flags & MARK:
            stats["marks"] += 1
        elif flags & DISCARD:
            stats["discards"] += 1
            os.pwrite(target, bytes(length), off)
        elif length:
            os.pwrite(target, read_at(log, data, length), off)
            stats["writes"] += 1
            stats["bytes"] += length
        if i in checks and args.check:
            os.fsync(target)
            res = subprocess.run(args.check, shell=True)
            checked += 1
            if res.returncode:
                print("check failed at entry %d of %d (flush %d of %d)" %
                      (i, flushes[-1] + 1, flushes.index(i) + 1,
                       len(flushes)))
                return 1
    os.fsync(target)
    print("replayed %d writes (%d KiB), %d discards, %d marks, %d flushes;"
          " %d flush points checked" %
          (stats["writes"], stats["bytes"] >> 10, stats["discards"],
           stats["marks"], len(flushes), checked))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("log")
    r.add_argument("target")
    r.add_argument("--check")
    r.add_argument("--max-checks", type=int, default=30)
    args = p.parse_args()
    return replay(args)


if __name__ == "__main__":
    sys.exit(main())
