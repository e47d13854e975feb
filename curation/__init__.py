"""Human-centric video dataset curation: the HumanOmni data pipeline on Ray, with Parquet manifests."""

__version__ = "0.1.0"
