"""Importing a HumanOmni release: every tensor, the outputs, and clear failures."""

from __future__ import annotations

import json

import pytest
import torch
from release_fixture import write_release
from train_fixtures import VIDEOS

from model.convert import ConvertError, convert, main
from model.infer import ask, load_checkpoint
from model.release import our_name
from model.train.checkpoint import load_stage_parts, stage_parts
from model.weights import INDEX, read_tensors

UNUSED = [
    "model.audio_tower.audio_tower.classifier.bias",
    "model.audio_tower.audio_tower.classifier.weight",
    "model.audio_tower.audio_tower.projector.bias",
    "model.audio_tower.audio_tower.projector.weight",
    "model.bert_model.pooler.dense.bias",
    "model.bert_model.pooler.dense.weight",
    "model.feature_compressor.vlm_key_projector.bias",
    "model.feature_compressor.vlm_key_projector.weight",
    "model.feature_compressor.vlm_query_projector.bias",
    "model.feature_compressor.vlm_query_projector.weight",
]


@pytest.fixture(scope="module")
def release(tmp_path_factory, tiny_dir):
    folder = tmp_path_factory.mktemp("release")
    model, tensors = write_release(folder, tiny_dir)
    return folder, model, tensors


@pytest.fixture(scope="module")
def converted(release, tmp_path_factory, tiny_dir):
    out = tmp_path_factory.mktemp("converted") / "humanomni"
    rc = main([str(release[0]), str(out), "--bert", str(tiny_dir / "bert")])
    assert rc == 0
    return out


def test_every_tensor_is_renamed_exactly_and_the_unused_are_listed(release, converted):
    _, model, tensors = release
    report = json.loads((converted / "convert_report.json").read_text())
    assert report["unused"] == UNUSED
    assert report["mapped"] == len(tensors) - len(UNUSED) == len(list(model.parameters()))
    assert (converted / INDEX).is_file()  # the release's three shards stay three
    saved = dict(read_tensors(converted))
    for name, tensor in tensors.items():
        ours = our_name(name)
        if ours is not None:
            assert torch.equal(saved.pop(ours), tensor), name
    assert saved == {}


def test_the_converted_checkpoint_gives_the_original_outputs(release, converted):
    _, original, _ = release
    loaded, processor = load_checkpoint(converted)
    assert processor.compat == "humanomni" and processor.gate_max_tokens == 512
    assert loaded.config.num_frames == 8 and loaded.config.stc_depth == original.config.stc_depth
    assert set(stage_parts(converted)) == {
        p for p in ("vision", "face_projector", "body_projector", "interaction_projector",
                    "gate", "audio_encoder", "audio_projector", "llm", "bert")
    }  # fmt: skip
    original.video_token_id, original.audio_token_id = loaded.video_token_id, loaded.audio_token_id
    conversation = [{"from": "human", "value": "<video>\n<audio>\nWhat is happening?"}]
    ids = torch.tensor([processor.prompt_ids(conversation)])
    gate = torch.tensor([processor.gate_ids(conversation)])
    media = {
        "pixel_values": torch.randn(1, 8, 3, 84, 84),
        "audio_features": torch.randn(1, 16, 100),
        "gate_input_ids": gate,
        "gate_attention_mask": torch.ones_like(gate),
    }
    with torch.no_grad():
        a = original(ids, torch.ones_like(ids), **media)
        b = loaded(ids, torch.ones_like(ids), **media)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.gate_weights, b.gate_weights)
    answer, weights = ask(
        loaded, processor, str(VIDEOS / "moviepy_chaplin.mp4"), "Who?", "video", 3
    )
    assert isinstance(answer, str) and sum(weights.values()) == pytest.approx(1.0)


def test_a_stage_takes_parts_from_a_converted_release_by_name(release, converted, tiny_config):
    from model.build import build_model

    _, original, _ = release
    model = build_model(tiny_config)
    load_stage_parts(model, converted, ["face_projector", "gate"])
    for part in ("face_projector", "gate"):
        mine, theirs = getattr(model, part).state_dict(), getattr(original, part).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def _copy_release(src, dst, tensors):
    import shutil

    from model.weights import write_shards

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", INDEX))
    write_shards(dst, [tensors], {"format": "pt"})
    return dst


def test_unexpected_or_missing_tensors_fail_with_their_name(release, tmp_path, tiny_dir):
    folder, _, tensors = release
    towers = {"bert": str(tiny_dir / "bert")}
    extra = _copy_release(
        folder, tmp_path / "extra", tensors | {"model.wings.weight": torch.ones(1)}
    )
    with pytest.raises(ConvertError, match="model.wings.weight"):
        convert(extra, tmp_path / "out1", towers)
    gone = "model.mm_projector.mlp_2xgelu_face.0.bias"
    lacking = _copy_release(
        folder, tmp_path / "lacking", {k: v for k, v in tensors.items() if k != gone}
    )
    with pytest.raises(ConvertError, match="face_projector.mlp.0.bias"):
        convert(lacking, tmp_path / "out2", towers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra", "lacking"]  # nothing left
    (tmp_path / "notarelease").mkdir()
    (tmp_path / "notarelease" / "config.json").write_text('{"model_type": "qwen2"}')
    assert main([str(tmp_path / "notarelease"), str(tmp_path / "out3")]) == 2


def test_a_stage_trains_from_a_converted_release(converted, tiny_dir, tmp_path):
    from train_fixtures import tiny_stage, write_exports

    from model.train.loop import train

    exports = write_exports(tmp_path / "run")
    cfg = tiny_stage("stage1_face", tiny_dir, tmp_path, exports, f"model.base={converted}", steps=2)
    result = train(cfg)
    assert result.losses and result.model.config.compat == "humanomni"
    saved = json.loads((cfg.output_path() / "final" / "omni_config.json").read_text())
    assert saved["compat"] == "humanomni" and saved["gate_max_tokens"] == 512
