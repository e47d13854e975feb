"""Freezing as config: exactly the named parts train, every other parameter is frozen."""

from __future__ import annotations

from model.omni import HumanOmniModel


def set_trainable(model: HumanOmniModel, parts: list[str]) -> list[str]:
    """Freeze everything, then unfreeze `parts`; returns the trainable parameter names."""
    model.requires_grad_(False)
    for part in parts:
        module = getattr(model, part)
        if module is None:
            raise ValueError(f"part {part!r} does not exist in this model size")
        module.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]
