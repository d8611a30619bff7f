"""Prefect flows and the command line. Arrows point one way: flows -> tasks -> slidegate."""
