"""Evaluation of the omni model: the metrics of the paper's tables (metrics.py)."""
