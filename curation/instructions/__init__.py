"""Per-branch instruction pairs from structured fields, and HumanOmni training exports."""
