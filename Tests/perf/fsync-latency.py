#!/usr/bin/env python3
"""How long one fsync of a small append takes on the disk holding DIRECTORY (default: the
current one): the floor under every durable commit of the bus, which fsyncs once per
transaction. Prints the percentiles over COUNT appends of 4 KiB (default 2,000)."""
import os
import sys
import tempfile
import time

directory = sys.argv[1] if len(sys.argv) > 1 else "."
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
fd, path = tempfile.mkstemp(prefix="fsync-latency-", dir=directory)
try:
    block = b"x" * 4096
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        os.write(fd, block)
        os.fsync(fd)
        latencies.append((time.perf_counter() - start) * 1e3)
finally:
    os.close(fd)
    os.unlink(path)
latencies.sort()


def at(share):
    return latencies[min(len(latencies) - 1, int(len(latencies) * share))]


print(f"fsync of a 4 KiB append, {count} times: p50 {at(0.5):.3f} ms, p99 {at(0.99):.3f} ms, "
      f"p99.9 {at(0.999):.3f} ms, max {latencies[-1]:.3f} ms")
