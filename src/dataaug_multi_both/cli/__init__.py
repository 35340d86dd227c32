"""Command-line entry points: `python -m dataaug_multi_both.cli.<command>`."""
