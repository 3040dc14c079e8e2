#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Acknowledged-write checker for power-cut tests.

write:  random 4 KiB O_DIRECT writes to a device region; every block carries
        (magic, run, block number, generation) and a pattern derived from
        them.  After writes complete, their (block, generation) pairs are
        printed as "ACK b:g b:g ... END" lines: only completed writes are
        ever reported.  Runs until killed (the power cut) or --seconds pass.
verify: reads the region and checks every block against the acknowledged
        writes found in a console log: a block must hold an intact block of
        its own number with a generation at least the latest acknowledged one
        (never stale), or zeroes if no write to it was ever acknowledged;
        anything else is data that was never written there.
        With --state FILE, the acknowledgements found so far and how much of
        the log they come from are kept in FILE (written atomically once the
        check passed), and the next verify reads only the log past that: a
        long power-cut loop's log grows by every boot's lines, and reading
        it whole at every boot made each check slower than the last.
"""
import argparse
import hashlib
import json
import mmap
import os
import random
import re
import struct
import sys
import time

BLOCK = 4096
MAGIC = 0x7063616368656b61  # "akehcacp"
HEADER = struct.Struct("<QQQQ")  # magic, run, block, generation


def block_bytes(run, blk, gen):
    header = HEADER.pack(MAGIC, run, blk, gen)
    seed = hashlib.sha256(header).digest()
    body = (seed * (BLOCK // len(seed) + 1))[: BLOCK - len(header)]
    return header + body


def do_write(args):
    fd = os.open(args.device, os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)
    rng = random.Random(f"{args.run}-{args.gen_base}")
    acks = []
    last = time.monotonic()
    deadline = last + args.seconds if args.seconds else None
    gen = args.gen_base
    while deadline is None or time.monotonic() < deadline:
        blk = rng.randrange(args.blocks)
        gen += 1
        buf[:] = block_bytes(args.run, blk, gen)
        os.pwrite(fd, buf, (args.first + blk) * BLOCK)
        acks.append(f"{blk}:{gen}")
        now = time.monotonic()
        if len(acks) >= 64 or now - last > 0.1:
            print("ACK " + " ".join(acks) + " END", flush=True)
            acks, last = [], now
            if args.ready and not os.path.exists(args.ready):
                open(args.ready, "w").close()
    if acks:
        print("ACK " + " ".join(acks) + " END", flush=True)
    os.close(fd)


def acknowledged(log, prefix="ACK", state=None):
    """The latest acknowledged generation of each block (or file) in the
    "PREFIX n:g n:g ... END" lines of a console log, and the log offset they
    were read up to.  With @state, a file save_acknowledged() wrote, only
    the log past the offset it holds is read, on top of what it holds."""
    acked, offset = {}, 0
    if state and os.path.exists(state):
        with open(state) as f:
            saved = json.load(f)
        if saved["prefix"] != prefix or saved["log"] != os.path.abspath(log):
            sys.exit(f"{state} is for another log or writer")
        acked = {int(k): v for k, v in saved["acked"].items()}
        offset = saved["offset"]
    pattern = re.compile(re.escape(prefix) + r" ((?:\d+:\d+ )+)END\s*$")
    with open(log, "rb") as f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # still being written: read it next time
            offset += len(raw)
            m = pattern.search(raw.decode(errors="replace"))
            if not m:
                continue  # a line torn by the power cut tells nothing
            for pair in m.group(1).split():
                blk, gen = map(int, pair.split(":"))
                acked[blk] = max(acked.get(blk, 0), gen)
    return acked, offset


def save_acknowledged(state, log, prefix, acked, offset):
    """Keep what acknowledged() found in @state: written to a new file,
    synced, renamed over the old one, and the directory synced, so that a
    power cut leaves either the old state or the new one."""
    tmp = state + ".new"
    with open(tmp, "w") as f:
        json.dump({"log": os.path.abspath(log), "prefix": prefix,
                   "offset": offset, "acked": acked}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, state)
    fd = os.open(os.path.dirname(os.path.abspath(state)), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def do_verify(args):
    acked, offset = acknowledged(args.log, "ACK", args.state)
    fd = os.open(args.device, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)
    bad = stale = checked = 0
    for blk in range(args.blocks):
        os.preadv(fd, [buf], (args.first + blk) * BLOCK)
        data = bytes(buf)
        want = acked.get(blk, 0)
        if data == bytes(BLOCK):
            if want:
                print(f"block {blk}: zeroes, acknowledged generation {want}")
                bad += 1
            continue
        magic, run, hblk, gen = HEADER.unpack_from(data)
        if magic != MAGIC or run != args.run or hblk != blk or \
                data != block_bytes(run, blk, gen):
            print(f"block {blk}: holds data never written there")
            bad += 1
        elif gen < want:
            print(f"block {blk}: stale generation {gen} < acknowledged {want}")
            stale += 1
        checked += 1
    os.close(fd)
    print(f"verified {args.blocks} blocks: {len(acked)} with acknowledged "
          f"writes, {checked} written, {stale} stale, {bad} bad")
    if bad or stale:
        return 1
    if args.state:
        save_acknowledged(args.state, args.log, "ACK", acked, offset)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["write", "verify"])
    p.add_argument("device")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--first", type=int, default=0, help="first block")
    p.add_argument("--blocks", type=int, required=True)
    p.add_argument("--gen-base", type=int, default=0)
    p.add_argument("--ready", help="write: create this file once the first "
                   "acknowledgements are printed")
    p.add_argument("--seconds", type=float, default=0)
    p.add_argument("--log", help="console log with ACK lines (verify)")
    p.add_argument("--state", help="verify: what earlier verifies read of "
                   "the log (see above)")
    args = p.parse_args()
    if args.mode == "write":
        do_write(args)
        return 0
    return do_verify(args)


if __name__ == "__main__":
    sys.exit(main())
