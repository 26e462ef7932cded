"""ganforge's benchmarks: one harness per question, all built on :mod:`benchmarks.harness`.

Run them from the repository root as modules, e.g. ``python -m benchmarks.speed --help``:

- ``benchmarks.speed``: how fast ganforge trains and scores, against the same step written by hand
  (the recipe's own networks, plain-PyTorch re-implementations of reference loops, layout variants);
- ``benchmarks.fewshot``: which recipe gives the best samples from a few hundred images in equal
  wall time;
- ``benchmarks.share``: what two runs on one machine get, with ganforge's CPU sharing on and off;
- ``benchmarks.bf16``: what bf16 autocast does to training (simulation, per-layer error, quality);
- ``benchmarks.soak``: kill training at random moments, resume, and end bit-identical to an
  uninterrupted run (also a test at a small size: tests/test_soak.py).

This file imports nothing, so that a harness's start-up stays that of the harness itself.
"""
