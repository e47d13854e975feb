"""Browsing a run: DuckDB over its Parquet (`browse`) and a static HTML report (`report`).

Everything here reads a run directory and never writes to it, except `report/` inside it.
Only finished shards are read (see layout.py), so both work while a curate is still going and
on runs that stopped after any stage. Modules: layout (where the shards are), db (DuckDB
views), summary (the funnel), text (terminal output), report/charts/page/assets/thumbs (HTML),
cli (the two subcommands).
"""
