#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Acknowledged-file checker for power-cut tests on a filesystem.

write:  replaces files DIR/fN the way careful applications do: the new
        content goes to DIR/fN.tmp, which is fsynced, renamed over DIR/fN,
        and the directory is fsynced.  Each file carries (magic, run, file
        number, generation, length) and a pattern derived from them, 1 to 64
        KiB long.  Only once all of that returned is the pair reported, as
        "FACK TAG n:g n:g ... END" lines.  Runs until killed or --seconds.
verify: every file with an acknowledged replacement must exist and be an
        intact file of its own number with a generation at least the latest
        acknowledged one; every other fN that exists must be intact too
        (a replacement that was not acknowledged may or may not have landed,
        but never half).  Leftover .tmp files are not checked.
"""
import argparse
import hashlib
import os
import random
import struct
import sys
import time

from acked_writes import acknowledged, save_acknowledged

MAGIC = 0x7063616368656669  # "ifehcacp"
HEADER = struct.Struct("<QQQQQ")  # magic, run, file, generation, length


def file_bytes(run, num, gen):
    pick = hashlib.sha256(f"{run}-{num}-{gen}".encode()).digest()[0]
    length = 1024 * (1 + pick % 64)
    header = HEADER.pack(MAGIC, run, num, gen, length)
    seed = hashlib.sha256(header).digest()
    body = (seed * (length // len(seed) + 1))[: length - len(header)]
    return header + body


def fsync_path(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def do_write(args):
    rng = random.Random(f"{args.run}-{args.gen_base}-{args.tag}")
    acks = []
    last = time.monotonic()
    deadline = last + args.seconds if args.seconds else None
    gen = args.gen_base
    while deadline is None or time.monotonic() < deadline:
        num = rng.randrange(args.files)
        gen += 1
        path = os.path.join(args.dir, f"f{num}")
        with open(path + ".tmp", "wb") as f:
            f.write(file_bytes(args.run, num, gen))
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)
        fsync_path(args.dir)
        acks.append(f"{num}:{gen}")
        now = time.monotonic()
        if len(acks) >= 32 or now - last > 0.1:
            print(f"FACK {args.tag} " + " ".join(acks) + " END", flush=True)
            acks, last = [], now
            if args.ready and not os.path.exists(args.ready):
                open(args.ready, "w").close()
    if acks:
        print(f"FACK {args.tag} " + " ".join(acks) + " END", flush=True)


def do_verify(args):
    prefix = f"FACK {args.tag}"
    acked, offset = acknowledged(args.log, prefix, args.state)
    bad = stale = present = 0
    checked_bytes = 0
    for num in range(args.files):
        path = os.path.join(args.dir, f"f{num}")
        want = acked.get(num, 0)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if want:
                print(f"f{num}: missing, acknowledged generation {want}")
                bad += 1
            continue
        present += 1
        checked_bytes += len(data)
        if len(data) < HEADER.size:
            print(f"f{num}: {len(data)} bytes, not a whole file")
            bad += 1
            continue
        magic, run, hnum, gen, length = HEADER.unpack_from(data)
        if magic != MAGIC or run != args.run or hnum != num or \
                data != file_bytes(run, num, gen):
            print(f"f{num}: holds data never written there ({len(data)} bytes)")
            bad += 1
        elif gen < want:
            print(f"f{num}: stale generation {gen} < acknowledged {want}")
            stale += 1
    print(f"verified {args.tag}: {args.files} files, {len(acked)} with "
          f"acknowledged replacements, {present} present, "
          f"{checked_bytes} bytes, {stale} stale, {bad} bad")
    if bad or stale:
        return 1
    if args.state:
        save_acknowledged(args.state, args.log, prefix, acked, offset)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["write", "verify"])
    p.add_argument("dir")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--tag", required=True, help="names this writer in the log")
    p.add_argument("--files", type=int, default=256)
    p.add_argument("--gen-base", type=int, default=0)
    p.add_argument("--ready", help="write: create this file once the first "
                   "acknowledgements are printed")
    p.add_argument("--seconds", type=float, default=0)
    p.add_argument("--log", help="console log with FACK lines (verify)")
    p.add_argument("--state", help="verify: what earlier verifies read of "
                   "the log (see acked_writes.py)")
    args = p.parse_args()
    if args.mode == "write":
        do_write(args)
        return 0
    return do_verify(args)


if __name__ == "__main__":
    sys.exit(main())
