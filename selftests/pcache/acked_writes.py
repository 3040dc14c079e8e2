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
"""
import argparse
import hashlib
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


def acknowledged(log, prefix="ACK"):
    """The latest acknowledged generation of each block (or file) in the
    "PREFIX n:g n:g ... END" lines of a console log."""
    acked = {}
    pattern = re.compile(re.escape(prefix) + r" ((?:\d+:\d+ )+)END\s*$")
    with open(log, errors="replace") as f:
        for line in f:
            m = pattern.search(line)
            if not m:
                continue  # a line torn by the power cut tells nothing
            for pair in m.group(1).split():
                blk, gen = map(int, pair.split(":"))
                acked[blk] = max(acked.get(blk, 0), gen)
    return acked


def do_verify(args):
    acked = acknowledged(args.log)
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
    return 1 if bad or stale else 0


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
    args = p.parse_args()
    if args.mode == "write":
        do_write(args)
        return 0
    return do_verify(args)


if __name__ == "__main__":
    sys.exit(main())
