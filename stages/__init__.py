"""Pipeline stages: one module per stage, each a small keyword-only dataclass (see base.Stage)."""
