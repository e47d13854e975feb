"""Import a HumanOmni release as a checkpoint of this project:

    python -m model.convert SRC OUT [--bert google-bert/bert-base-uncased] [--vision ..]
        [--audio ..]

SRC is a release folder (config.json, one or sharded safetensors with their index, the LLM's
tokenizer files). OUT is a checkpoint that `python -m model.infer --checkpoint OUT`, a stage's
`init_from` and a stage's `model.base` accept: every part's weights (renamed, in the release's
dtype, shard by shard as the release has them), `omni_config.json` with compat "humanomni"
(the release's text rules) and `llm/` (the LLM's config and tokenizer). The tensors the model
does not use are listed; a tensor that maps to nothing, a shape that differs or a parameter the
release lacks fails the conversion with its name, before anything is written.

The vision and audio towers are named by the release's `mm_vision_tower`/`mm_audio_tower`
(override with --vision/--audio), the gate's BERT by --bert (the release hard-codes
bert-base-uncased); their architectures come from the shipped configs for the released
components, else from the source. Their image processor, feature extractor and tokenizer are
read from those sources at load time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from model.build import build_model
from model.config import COMPONENTS_DIR, PARTS, Component, OmniConfig
from model.data.processor import NEEDED_TOKENS
from model.release import MULTIMODAL_FIELDS, RELEASE_MODEL_TYPES, our_name, stc_depth
from model.weights import read_tensors, shape_of, weight_map, write_shards

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "generation_config.json",
)
REPORT = "convert_report.json"


class ConvertError(ValueError):
    pass


def _component(source: str) -> Component:
    """A tower by source; the shipped architecture file of a released component when there is
    one (no download needed to build it), else the source's own config."""
    shipped = COMPONENTS_DIR / f"{Path(source).name}.json"
    if not Path(source).is_dir() and shipped.is_file():
        return Component(source, str(shipped))
    return Component(source)


def release_config(src: Path) -> dict[str, Any]:
    path = src / "config.json"
    if not path.is_file():
        raise ConvertError(f"{src} is not a HumanOmni release: no config.json")
    config = json.loads(path.read_text())
    if config.get("model_type") not in RELEASE_MODEL_TYPES:
        raise ConvertError(
            f"{path}: model_type {config.get('model_type')!r} is not a HumanOmni release "
            f"({', '.join(RELEASE_MODEL_TYPES)})"
        )
    for field in ("mm_vision_tower", "mm_audio_tower"):
        if not config.get(field):
            raise ConvertError(f"{path} has no {field}: a release with both towers is needed")
    return config


def omni_config_of(
    src: Path, config: dict[str, Any], names: list[str], out: Path, towers: dict[str, str]
) -> OmniConfig:
    return OmniConfig(
        name=src.resolve().name,
        vision=_component(towers.get("vision") or config["mm_vision_tower"]),
        llm=Component(str((out / "llm").resolve())),
        audio=_component(towers.get("audio") or config["mm_audio_tower"]),
        gate_text=_component(towers["bert"]),
        # The release reads config.num_frames, and 8 frames (its NUM_FRAMES) without it.
        num_frames=int(config.get("num_frames") or 8),
        stc_depth=stc_depth(names),
        slow_fast=True,
        vision_feature_layer=int(config.get("mm_vision_select_layer", -2)),
        gate_max_tokens=512,
        compat="humanomni",
        system_prompt=None,
    )


def write_llm_folder(src: Path, config: dict[str, Any], folder: Path) -> None:
    """The LLM's own config (the release's without the multimodal fields) and tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    llm = {k: v for k, v in config.items() if not MULTIMODAL_FIELDS.match(k)}
    llm |= {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
    (folder / "config.json").write_text(json.dumps(llm, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, folder / name)


def plan(src: Path, omni: OmniConfig) -> tuple[dict[str, str], list[str]]:
    """release name → our name for every used tensor, and the unused names; checked against
    the model built (without memory) from `omni`."""
    shapes = shape_of(src)
    model = build_model(omni, pretrained=False, empty=True)
    ours = {name: tuple(p.shape) for name, p in model.named_parameters()}
    buffers = {name for name, _ in model.named_buffers()}
    mapping, unused = {}, []
    for name in sorted(shapes):
        try:
            target = our_name(name)
        except KeyError:
            raise ConvertError(f"unexpected tensor in the release: {name}") from None
        if target is None or (target in buffers and target not in ours):
            unused.append(name)
            continue
        if target not in ours:
            raise ConvertError(f"release tensor {name} maps to {target}, which the model lacks")
        if shapes[name] != ours[target]:
            raise ConvertError(
                f"release tensor {name} has shape {shapes[name]}, the model's {target} "
                f"{ours[target]}"
            )
        mapping[name] = target
    missing = sorted(set(ours) - set(mapping.values()))
    if missing:
        raise ConvertError(
            f"the release lacks {len(missing)} of the model's parameters, e.g. {missing[0]}"
        )
    return mapping, unused


def _check_vocab(omni: OmniConfig, config: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(omni.llm.source)
    vocab = tokenizer.get_vocab()
    needed = len(tokenizer) + sum(t not in vocab for t in NEEDED_TOKENS[omni.compat])
    if needed > int(config["vocab_size"]):
        raise ConvertError(
            f"the tokenizer with the placeholders has {needed} tokens, the release's embedding "
            f"{config['vocab_size']} rows"
        )


@torch.no_grad()
def convert(src: str | Path, out: str | Path, towers: dict[str, str]) -> dict[str, Any]:
    """Convert; returns the report written to OUT/convert_report.json."""
    src, out = Path(src), Path(out)
    config = release_config(src)
    names = sorted(weight_map(src))
    if out.exists() and any(out.iterdir()):
        raise ConvertError(f"{out} exists and is not empty")
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        report = _convert_into(src, config, names, out, staging, towers)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    staging.rename(out)
    return report


def _convert_into(
    src: Path,
    config: dict[str, Any],
    names: list[str],
    out: Path,
    staging: Path,
    towers: dict[str, str],
) -> dict[str, Any]:
    write_llm_folder(src, config, staging / "llm")
    omni = omni_config_of(src, config, names, staging, towers)
    _check_vocab(omni, config)
    mapping, unused = plan(src, omni)
    parts = sorted({mapping[n].split(".")[0] for n in mapping}, key=PARTS.index)
    files = weight_map(src)

    def shards():
        for file in sorted(set(files.values())):
            group = [n for n in names if files[n] == file and n in mapping]
            yield {mapping[n]: t for n, t in read_tensors(src, group)}
            print(f"  {file.name}: {len(group)} tensors", flush=True)

    write_shards(staging, shards(), {"parts": json.dumps(parts), "source": "humanomni"})
    final = replace(omni, llm=Component(str((out / "llm").resolve())))
    final.save(staging / "omni_config.json")
    report = {
        "source": str(src.resolve()),
        "tensors": len(names),
        "mapped": len(mapping),
        "unused": unused,
        "parts": parts,
        "compat": final.compat,
    }
    (staging / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", help="a HumanOmni release folder")
    parser.add_argument("out", help="the checkpoint folder to write (new or empty)")
    parser.add_argument("--bert", default="google-bert/bert-base-uncased")
    parser.add_argument("--vision", help="instead of the release's mm_vision_tower")
    parser.add_argument("--audio", help="instead of the release's mm_audio_tower")
    args = parser.parse_args(argv)
    try:
        report = convert(
            args.src, args.out, {"bert": args.bert, "vision": args.vision, "audio": args.audio}
        )
    except (ConvertError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.out}: {report['mapped']} of {report['tensors']} tensors, parts "
        f"{', '.join(report['parts'])}; compat {report['compat']}"
    )
    print(f"unused ({len(report['unused'])}): " + ", ".join(report["unused"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
