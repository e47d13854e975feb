from pathlib import Path

import pytest

from curation.engine.config import ConfigError, PipelineConfig, load_config, parse_override

PROFILES = sorted((Path(__file__).resolve().parents[2] / "configs" / "curate").glob("*.yaml"))


def test_every_profile_loads_and_validates():
    assert {p.stem for p in PROFILES} >= {"local", "cluster", "offline"}
    for path in PROFILES:
        assert isinstance(load_config(path), PipelineConfig), path


def test_offline_profile_is_local_and_says_loudly_that_it_is_not_real():
    cfg = load_config(PROFILES[[p.stem for p in PROFILES].index("offline")])
    assert cfg.runner.kind == "local"
    assert "NOT real" in (cfg.notice or "")


def test_override_sets_nested_field_with_yaml_typing():
    cfg = load_config(
        None, ["temporal.min_keyframes=3", "cut.mode=virtual", "scenes.threshold=2.5"]
    )
    assert cfg.temporal.min_keyframes == 3
    assert cfg.cut.mode == "virtual"
    assert cfg.scenes.threshold == 2.5


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("temporal:\n  min_keyframez: 3\n")
    with pytest.raises(ConfigError, match=r"temporal\.min_keyframez: unknown key"):
        load_config(bad)


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"temporal\.min_keyframes"):
        load_config(None, ["temporal.min_keyframes=-1"])
    with pytest.raises(ConfigError, match=r"scenes\.detector"):
        load_config(None, ["scenes.detector=magic"])
    with pytest.raises(ConfigError, match=r"unknown stage"):
        load_config(None, ["stages=[probe, captions]"])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_override("temporal.min_keyframes")
    with pytest.raises(ConfigError, match="not a section"):
        load_config(None, ["cut.mode=files", "cut.mode.x=1"])


def test_scene_bounds_are_checked():
    with pytest.raises(ConfigError, match="twice min_duration_s"):
        load_config(None, ["scenes.min_duration_s=10", "scenes.max_duration_s=15"])


def test_fingerprint_ignores_runner_and_resources_but_not_settings():
    base = load_config(None).fingerprint()
    assert load_config(None, ["runner.kind=local", "cut.resources.cpus=4"]).fingerprint() == base
    assert load_config(None, ["temporal.min_keyframes=5"]).fingerprint() != base


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("boxes.face.kind=ultralytics", "boxes: Value error, face.kind must be one of"),
        ("boxes.person.kind=yolo", "boxes.person.kind: Input should be"),
        ("boxes.min_human_fraction=1.5", "boxes.min_human_fraction"),
        (
            "consensus.prompt=merge these",
            "consensus: Value error, prompt must contain ['{captions}']",
        ),
        ("consensus.method=vote", "consensus.method"),
        (
            "detailed_caption.models=[{name: a, backend: {model: m}}, {name: a, backend: {model: n}}]",
            "detailed_caption: Value error, models: names must be unique",
        ),
        (
            "detailed_caption.models=[{name: a, backend: {model: m}}]",
            "fewer than min_candidates 2",
        ),
        ("consensus.prompt=Merge {captions} as {style}", "placeholder other than ['captions']"),
        ("structure.prompt=Fill {fields}", "prompt must contain ['{caption}']"),
        ("detailed_caption.min_candidates=1", "below consensus.min_support (2)"),
    ],
)
def test_model_stage_settings_fail_with_the_field_named(override, named):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert named in str(err.value)


def test_a_stage_whose_input_columns_nothing_writes_is_refused(tmp_path):
    from curation.engine.pipeline import build_stages
    from curation.rundir import RunDir

    config = load_config(None, ["stages=[probe, scenes, temporal, cut, consensus]"])
    with pytest.raises(ConfigError, match="consensus needs \\['candidates'\\]"):
        build_stages(config, RunDir(tmp_path, "r"))


def test_schemas_follow_the_configured_order(tmp_path):
    from curation.engine.pipeline import build_stages
    from curation.rundir import RunDir

    order = ["probe", "scenes", "temporal", "cut", "brief_caption", "boxes"]
    stages = build_stages(
        load_config(None, [f"stages=[{', '.join(order)}]"]), RunDir(tmp_path, "r")
    )
    captions, boxes = stages[-2].schema.names, stages[-1].schema.names
    assert "boxes" not in captions and "brief_caption" in boxes and "frames_with_face" in boxes
    assert boxes[-3:] == ["kept", "reject_reason", "reject_detail"]


def test_a_config_recorded_before_the_stage_table_loads_with_its_fingerprint():
    """run.json of a run made when every section was declared in one module (the offline
    profile with two overrides): the same keys, values and fingerprint, so it resumes. (Its
    scenes, signals, instructions and export.vispeak sections were brought up to date when the
    damage rule replaced `max_lost_share`, the validation split came and the ViSpeak export
    learned its loader's frame settings: deliberate changes of what a run writes, so of the
    fingerprint too.)"""
    import json

    from curation.annotate.config import AnnotateConfig
    from curation.engine.config import recorded_config

    state = json.loads((Path(__file__).parent / "recorded_config.json").read_text())
    config = recorded_config(state)
    dumped = config.model_dump(mode="json")
    # A section added since that changes nothing a run writes loads with its defaults.
    assert dumped.pop("annotate") == AnnotateConfig().model_dump(mode="json")
    assert dumped == state["config"]
    assert config.fingerprint() == state["config_fingerprint"]
    assert config.scenes.min_duration_s == 1.5 and config.boxes.frames == 5


def test_a_removed_setting_is_dropped_from_a_recorded_run_and_named_in_a_profile(tmp_path, caplog):
    import json

    from curation.engine.config import recorded_config

    state = json.loads((Path(__file__).parent / "recorded_config.json").read_text())
    state["config"]["scenes"]["max_lost_share"] = 0.02  # as runs before the damage rule have it
    config = recorded_config(state)
    assert config.scenes.damaged_clips == "trim" and "max_lost_share" in caplog.text
    profile = tmp_path / "old.yaml"
    profile.write_text("scenes:\n  max_lost_share: 0.05\n")
    with pytest.raises(ConfigError, match="max_lost_share was removed: .*damaged_clips"):
        load_config(profile)
