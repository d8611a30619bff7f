"""Stage functions: the units that tasks call. Pure orchestration-free Python.

Each takes a `ReleaseContext` (small, frozen, picklable) plus a small report, does one stage for
one slide (or the cohort), and returns a PHI-free report. Slide-level bad input becomes a
quarantined report; only `TransientIOError` escapes to be retried.
"""
