#!/usr/bin/env python3
"""Why a restore fsyncs its blobs in one batch: writes 1 304 files of 160 kB (the shape of the
backup benchmark's region) three ways, twice each, and prints the seconds:

  each       fsync each file right after writing it (what restore did before 2026-11-27)
  parallel8  write all, then fsync every file, eight threads at a time (BlobStore::sync_bulk)
  sync       write all, then one sync(2) (the anchor's `cp -r && sync`)

    python3 bench/fsync_batch.py [DIR]     # DIR on the disk to measure; default ./fsync-bench
"""
import concurrent.futures as cf
import os
import shutil
import sys
import time

d = sys.argv[1] if len(sys.argv) > 1 else "fsync-bench"
data = os.urandom(160_000)
N = 1304


def fsync_path(p):
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


for mode in ["each", "parallel8", "sync"] * 2:
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.sync()
    t = time.time()
    for i in range(N):
        with open(f"{d}/{i:05}", "wb") as f:
            f.write(data)
            if mode == "each":
                f.flush()
                os.fsync(f.fileno())
    if mode == "parallel8":
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(fsync_path, (f"{d}/{i:05}" for i in range(N))))
    if mode == "sync":
        os.sync()
    print(f"{mode:10} {time.time() - t:.3f} s")
shutil.rmtree(d)
