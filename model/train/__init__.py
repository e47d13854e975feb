"""The trainer: one recipe (`loop.train`), stages as YAML configs in configs/train/."""
