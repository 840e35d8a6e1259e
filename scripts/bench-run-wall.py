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
import tempfile

run = [BIN, "run", "tests/fixtures/valid/ten-steps.yaml", "--input", "tests/fixtures/valid/ten-steps.input.json", "--output", "json"]
ref = median_ms(["/bin/true"])
memory = median_ms(run + ["--store", "memory"])
with tempfile.TemporaryDirectory() as tmp:
    durable = median_ms(run + ["--store", f"sqlite://{tmp}/scenarist.db"])
print(f"runs: {N} each")
print(f"reference /bin/true                    median {ref[0]:.2f} ms (min {ref[1]:.2f}, max {ref[2]:.2f})")
print(f"scenarist run ten-steps, --store memory median {memory[0]:.2f} ms (min {memory[1]:.2f}, max {memory[2]:.2f})")
print(f"scenarist run ten-steps, SQLite file   median {durable[0]:.2f} ms (min {durable[1]:.2f}, max {durable[2]:.2f})")
