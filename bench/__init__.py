"""`make bench`: the conversion benchmark of /work/shared/reference/benchmark.md (opt-in)."""
