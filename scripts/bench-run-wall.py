#!/usr/bin/env python3
"""Wall time of `scenarist run` on the 10-step scenario, process start included.

Runs the release binary N times (bounded) and reports the median, next to the
median of a reference process (`/bin/true`) started the same way in the same
run, so that a noisy machine shows up in both numbers.

Usage: cargo build --release && python3 scripts/bench-run-wall.py [N]
"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "scenarist")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 50


def median_ms(cmd):
    samples = []
    for _ in range(N):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            sys.exit(f"{cmd} exited {done.returncode}")
    return statistics.median(samples), min(samples), max(samples)


if not os.path.exists(BIN):
    sys.exit("build first: cargo build --release")
run = [BIN, "run", "tests/fixtures/valid/ten-steps.yaml", "--input", "tests/fixtures/valid/ten-steps.input.json", "--output", "json"]
ref = median_ms(["/bin/true"])
res = median_ms(run)
print(f"runs: {N} each")
print(f"reference /bin/true        median {ref[0]:.2f} ms (min {ref[1]:.2f}, max {ref[2]:.2f})")
print(f"scenarist run ten-steps    median {res[0]:.2f} ms (min {res[1]:.2f}, max {res[2]:.2f})")
