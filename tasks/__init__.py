"""Prefect task wrappers, one module per stage. Each body reads inputs, calls the core, returns
a small PHI-free report. Only `TransientIOError` is retried."""
