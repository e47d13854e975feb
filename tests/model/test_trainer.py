"""The trainer on the tiny model, one CPU process: configs, loss, freezing, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_fixtures import AUDIO_TEXT, TINY_CONFIGS, tiny_stage, write_exports

from curation.core.config import ConfigError
from model.config import PARTS
from model.data.processor import OmniProcessor
from model.infer import ask, load_checkpoint
from model.train.checkpoint import load_stage_parts
from model.train.config import load_train_config
from model.train.loop import omni_config_for, prepare_model, train

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "train").rglob("*.yaml"))
STAGES = [
    "stage1_face",
    "stage1_body",
    "stage1_interaction",
    "stage1_visual",
    "stage2_audio",
    "stage3_joint",
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_exports(tmp_path_factory.mktemp("run"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_train_config_validates(path):
    cfg = load_train_config(path)
    assert set(cfg.trainable) <= set(PARTS)


def test_bad_train_config_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntrainable: [face_projector, wings]\ndata: {train: [a.json]}\n"
        "optim: {lr: -1}\nschedule: {steps: 3}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_train_config(bad)
    assert "trainable: " in str(err.value) and "wings" in str(err.value)
    assert "optim.lr: " in str(err.value)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_trains_exactly_its_configured_parts(stage, exports, tiny_dir, tmp_path):
    cfg = tiny_stage(
        stage, tiny_dir, tmp_path, exports, "init_from=[]", "schedule.micro_batch_size=4", steps=2
    )
    omni = omni_config_for(cfg)
    before = _snapshot(prepare_model(cfg, omni, OmniProcessor.from_config(omni), None))
    result = train(cfg)
    after = _snapshot(result.model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trained = {k for k in before if k.split(".")[0] in cfg.trainable}
    assert changed <= trained, f"frozen parameters changed: {sorted(changed - trained)[:5]}"
    # Every trainable tensor moved (buffers such as position ids never do).
    params = {k for k, _ in result.model.named_parameters()}
    assert (trained & params) - changed == set()


@pytest.mark.slow
def test_thirty_steps_lower_the_loss(exports, tiny_dir, tmp_path):
    cfg = tiny_stage("stage3_joint", tiny_dir, tmp_path, exports, "init_from=[]", steps=30)
    losses = train(cfg).losses
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, losses


@pytest.mark.slow
def test_save_load_gives_identical_logits_and_inference_runs(exports, tiny_dir, tmp_path):
    cfg = tiny_stage("stage3_joint", tiny_dir, tmp_path, exports, "init_from=[]", steps=3)
    result = train(cfg)
    final = cfg.output_path() / "final"
    assert final.resolve() == result.checkpoint.resolve()
    loaded, processor = load_checkpoint(final)
    trained = result.model.eval()
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
        a = trained(ids, torch.ones_like(ids), **media).logits
        b = loaded(ids, torch.ones_like(ids), **media).logits
    assert torch.equal(a, b), (a - b).abs().max()
    video = Path(json.loads((exports / "mixed.json").read_text())[-1]["video"])
    for modal in ("video_audio", "video", "audio"):
        answer, weights = ask(loaded, processor, str(video), "What is happening?", modal, 3)
        assert isinstance(answer, str)
        assert (weights is None) == (modal == "audio")
        if weights:
            assert sum(weights.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_stage1_checkpoint_loads_into_stage3_by_name(exports, tiny_dir, tmp_path):
    face = tiny_stage("stage1_face", tiny_dir, tmp_path, exports, steps=2)
    train(face)
    final = face.output_path() / "final"
    saved = load_file(str(final / "model.safetensors"))
    assert {k.split(".")[0] for k in saved} == {"face_projector"}
    joint = tiny_stage(
        "stage3_joint",
        tiny_dir,
        tmp_path,
        exports,
        f"init_from=[{{checkpoint: '{final}', parts: [face_projector]}}]",
        steps=1,
    )
    omni = omni_config_for(joint)
    processor = OmniProcessor.from_config(omni)
    model = prepare_model(joint, omni, processor, None)
    own = dict(model.named_parameters())
    for name, tensor in saved.items():
        assert torch.equal(own[name], tensor), name
    missing = tiny_stage(
        "stage3_joint",
        tiny_dir,
        tmp_path,
        exports,
        f"init_from=[{{checkpoint: '{final}', parts: [gate]}}]",
    )
    with pytest.raises(ValueError, match="neither trained nor loaded the parts \\['gate'\\]"):
        prepare_model(missing, omni, OmniProcessor.from_config(omni), None)
    # A part is found where it was trained, through the init_from of a stage that loaded it.
    audio = tiny_stage(
        "stage2_audio",
        tiny_dir,
        tmp_path,
        AUDIO_TEXT.parent,
        f"init_from=[{{checkpoint: '{final}', parts: [face_projector]}}]",
        steps=1,
    )
    train(audio)
    fresh = prepare_model(joint.model_copy(update={"init_from": []}), omni, processor, None)
    load_stage_parts(fresh, audio.output_path() / "final", ["face_projector"])
    for name, tensor in saved.items():
        assert torch.equal(dict(fresh.named_parameters())[name], tensor), name


@pytest.mark.slow
def test_projector_only_stage_still_checkpoints_the_frozen_llm(exports, tiny_dir, tmp_path):
    cfg = tiny_stage(
        "stage1_face", tiny_dir, tmp_path, exports, "gradient_checkpointing=true", steps=1
    )
    llm = train(cfg).model.llm
    # transformers checkpoints a layer only when it is in training mode.
    layers = llm.model.layers
    assert all(layer.gradient_checkpointing and layer.training for layer in layers)
    assert not any(p.requires_grad for p in llm.parameters())


@pytest.mark.slow
def test_resume_continues_the_same_loss_curve(exports, tiny_dir, tmp_path):
    whole = tiny_stage("stage1_visual", tiny_dir, tmp_path / "a", exports, "init_from=[]", steps=6)
    expected = train(whole).losses
    split = tiny_stage("stage1_visual", tiny_dir, tmp_path / "b", exports, "init_from=[]", steps=6)
    head = train(split, stop_at=3)
    tail = train(split)  # resumes from step 3
    assert head.first_step == 0 and tail.first_step == 3
    assert head.losses + tail.losses == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.slow
def test_a_sample_that_fails_to_load_is_counted_or_fails_loudly(exports, tiny_dir, tmp_path):
    broken = json.loads((exports / "face.json").read_text())
    broken[0]["video"] = str(tmp_path / "gone.mp4")
    path = tmp_path / "face_broken.json"
    path.write_text(json.dumps(broken))
    cfg = tiny_stage(
        "stage1_face",
        tiny_dir,
        tmp_path,
        exports,
        f"data.train=['{path}']",
        "data.shuffle=false",
        "schedule.micro_batch_size=1",
        steps=2,
    )
    # Step 1's only sample is the broken one: an empty batch, trained on as loss 0.
    result = train(cfg)
    assert result.skipped == {"missing_video": 1} and result.losses[0] == 0.0
    assert result.losses[1] > 0
    strict = tiny_stage(
        "stage1_face",
        tiny_dir,
        tmp_path / "strict",
        exports,
        f"data.train=['{path}']",
        "data.shuffle=false",
        "data.on_error=fail",
        steps=2,
    )
    with pytest.raises(Exception, match="gone.mp4|missing"):
        train(strict)


def test_stage2_reads_audio_text_data(tiny_dir, tmp_path):
    cfg = tiny_stage("stage2_audio", tiny_dir, tmp_path, AUDIO_TEXT.parent, "init_from=[]", steps=1)
    result = train(cfg)
    assert result.losses and not result.skipped
    saved = load_file(str(cfg.output_path() / "final" / "model.safetensors"))
    assert {k.split(".")[0] for k in saved} == {"audio_projector"}


def test_validation_settings_are_not_part_of_what_a_checkpoint_was_trained_on(
    exports, tiny_dir, tmp_path
):
    from model.train.fingerprint import differences, fingerprint

    plain = tiny_stage("stage3_joint", tiny_dir, tmp_path, exports)
    validated = tiny_stage("stage3_joint", tiny_dir, tmp_path, exports, "eval_every=7",
                           f"data.val=['{exports / 'face.json'}']", "data.val_max_samples=9")  # fmt: skip
    assert differences(fingerprint(plain), fingerprint(validated)) == []
    # A stage saved before these settings existed resumes too: its fingerprint lacks them.
    old = fingerprint(plain)
    old["config"] = {k: v for k, v in old["config"].items() if "val" not in k}
    assert differences(old, fingerprint(validated)) == []


def test_schedule_length_in_steps_or_epochs():
    from model.train.config import ScheduleSection

    assert ScheduleSection(epochs=1, micro_batch_size=2).total_steps(15, 2) == 8
    assert ScheduleSection(epochs=0.5, grad_accum=4).total_steps(100, 8) == 7
    assert ScheduleSection(steps=3).total_steps(1000, 8) == 3
    with pytest.raises(ValueError, match="exactly one of steps and epochs"):
        ScheduleSection(steps=3, epochs=1)


def test_validation_loss_is_the_loss_on_the_held_out_samples(exports, tiny_dir, tmp_path):
    from model.data.dataset import OmniDataset
    from model.train.checkpoint import read_trainer_state
    from model.train.validate import MODEL_KEYS, validation_records

    held = [f"data.val=['{exports / 'face.json'}']", "data.val_max_samples=3", "eval_every=2"]
    cfg = tiny_stage("stage3_joint", tiny_dir, tmp_path, exports, "init_from=[]", *held, steps=4)
    result = train(cfg)
    assert [step for step, _ in result.val_losses] == [2, 4]
    # Recomputed sample by sample with the trained model: the summed loss over the summed
    # supervised tokens of the same three samples.
    model = result.model.eval()
    model.run_every_branch = False
    processor = OmniProcessor.from_config(omni_config_for(cfg))
    dataset = OmniDataset(
        validation_records(cfg), processor, max_text_tokens=cfg.data.max_text_tokens
    )
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = dataset.collate_fn([dataset[i]])
            out = model(**{k: batch[k] for k in MODEL_KEYS if batch.get(k) is not None})
            total += float(out.loss_sum)
            tokens += int((batch["labels"] != -100).sum())
    assert len(dataset) == 3
    assert result.val_losses[-1][1] == pytest.approx(total / tokens, rel=1e-4)
    recorded = read_trainer_state(cfg.output_path() / "final")["val"]
    assert [(v["step"], v["val_samples"]) for v in recorded] == [(2, 3), (4, 3)]
    assert recorded[-1]["val_loss"] == pytest.approx(result.val_losses[-1][1])


def test_train_command_checks_every_stage_input_before_training(capsys):
    from model.train.__main__ import main

    configs = [str(TINY_CONFIGS / f"{s}.yaml") for s in ("stage1_face", "stage1_visual")]
    code = main([*configs, "--run", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing trained" in err
    assert "data_manifests/nope/exports/face.json not found" in err
    # stage1_face's own checkpoint would come from this command; the others would not.
    assert "stage1_face/final" not in err and "stage1_body/final not found" in err
