"""Safetensors weight folders: one `model.safetensors`, or shards with their index, as Hugging
Face writes them. Tensors are read one at a time (a 7B checkpoint is never held twice), and
shards are written one at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"


def has_weights(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() or (folder / INDEX).is_file()


def weight_map(folder: str | Path) -> dict[str, Path]:
    """Every tensor name in the folder → the file that holds it."""
    folder = Path(folder)
    if (folder / INDEX).is_file():
        index = json.loads((folder / INDEX).read_text())
        return {name: folder / file for name, file in index["weight_map"].items()}
    if not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"no weights in {folder} (neither {WEIGHTS} nor {INDEX})")
    with safe_open(str(folder / WEIGHTS), "pt") as fh:
        return {name: folder / WEIGHTS for name in fh.keys()}  # noqa: SIM118 (not a dict)


def weights_metadata(folder: str | Path) -> dict[str, str]:
    """The string metadata written with the weights (the index's, or the single file's)."""
    folder = Path(folder)
    if (folder / INDEX).is_file():
        return dict(json.loads((folder / INDEX).read_text()).get("metadata") or {})
    with safe_open(str(folder / WEIGHTS), "pt") as fh:
        return dict(fh.metadata() or {})


def read_tensors(
    folder: str | Path, names: Iterable[str] | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for `names` (all when None), file by file, one tensor in memory at a time."""
    files = weight_map(folder)
    wanted = files if names is None else {n: files[n] for n in names}
    by_file: dict[Path, list[str]] = {}
    for name, file in wanted.items():
        by_file.setdefault(file, []).append(name)
    for file, group in sorted(by_file.items()):
        with safe_open(str(file), "pt") as fh:
            for name in group:
                yield name, fh.get_tensor(name)


def shape_of(folder: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, without reading any tensor."""
    shapes = {}
    files = weight_map(folder)
    for file in sorted(set(files.values())):
        with safe_open(str(file), "pt") as fh:
            for name in fh.keys():  # noqa: SIM118 (not a dict)
                shapes[name] = tuple(fh.get_slice(name).get_shape())
    return shapes


def write_shards(
    folder: Path,
    shards: Iterable[dict[str, torch.Tensor]],
    metadata: dict[str, str],
) -> list[Path]:
    """Each dict becomes one shard, written as it comes; a single shard is `model.safetensors`,
    several get an index. Files are renamed into place when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, list[str]]] = []
    for i, tensors in enumerate(shards):
        path = folder / f"model-{i + 1:05d}.safetensors"
        tmp = path.with_name(f".{path.name}.tmp")
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(cpu, str(tmp), metadata=metadata)
        os.replace(tmp, path)
        written.append((path, sorted(cpu)))
    if len(written) == 1:
        single = folder / WEIGHTS
        os.replace(written[0][0], single)
        return [single]
    index = {
        "metadata": metadata,
        "weight_map": {name: path.name for path, names in written for name in names},
    }
    tmp = folder / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp, folder / INDEX)
    return [path for path, _ in written]
