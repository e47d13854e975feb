"""Semantic de-duplication of caption embeddings: grouping and the quality key (groups.py),
the exact and partitioned pair search (scale.py, partitions.py) and its matrix products
(kernels.py), and its settings (config.py). The dedup stage (stages/dedup.py) runs it over a run."""
