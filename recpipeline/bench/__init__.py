"""Benchmarks: ``recpipeline bench`` (the real pipeline on generated data, timed per step) and the bound it
is measured against (a bare torch loop of the same model)."""
