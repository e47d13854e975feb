"""lmms-eval task definitions of the project (YAML) and what they call (utils.py)."""
