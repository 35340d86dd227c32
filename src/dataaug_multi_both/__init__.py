"""dataaug_multi_both: dual-head transformer training and storage-bounded HPO on ReDSM5-format data."""

__version__ = "0.1.0"
