"""Eligibility, template pairs, closed-set balance and the export format, on hand-written fields."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from curation.instructions.exports import check_sample, sample
from curation.instructions.fields import EMOTIONS, FieldsError, parse_fields
from curation.instructions.generate import eligible, template_pairs, unique
from stages.base import pop_extra

EMPTY = {
    "face": {"appearance": "", "expression": "", "emotion": "", "gaze": ""},
    "body": {"appearance": "", "clothing": "", "action": "", "pose": ""},
    "interaction": {"with_people": "", "with_objects": "", "environment": ""},
}


def fields(**values: str) -> dict:
    out = {group: dict(keys) for group, keys in EMPTY.items()}
    for dotted, value in values.items():
        group, key = dotted.split("__")
        out[group][key] = value
    return out


def test_eligibility_follows_the_paper():
    only_scene = fields(interaction__environment="a busy street")
    assert not eligible("face", only_scene) and not eligible("body", only_scene)
    assert eligible("interaction", only_scene)
    assert eligible("face", fields(face__expression="a broad smile"))
    assert eligible("body", fields(body__clothing="a red coat"))
    assert not eligible("interaction", None)  # no fields: structure failed for this clip


def test_a_field_absent_from_the_caption_produces_no_question_about_it():
    given = fields(face__expression="a broad smile", body__action="waving")
    face = template_pairs("face", "clip", given, None)
    assert [p.field for p in face] == ["face.expression"]  # no appearance, emotion or gaze
    assert face[0].answer == "A broad smile." and face[0].source.startswith("face.expression.")
    assert not any("emotion" in p.question.lower() for p in face)
    body = template_pairs("body", "clip", given, None)
    assert [p.field for p in body] == ["body.action"]


def test_interaction_adds_the_detailed_caption_as_a_description_instruction():
    pairs = template_pairs(
        "interaction", "c", fields(interaction__environment="a kitchen"), "A cook."
    )
    assert [p.kind for p in pairs] == ["open", "caption"] and pairs[1].answer == "A cook."


def test_paraphrases_vary_across_clips_and_are_reproducible():
    given = fields(body__action="running")
    questions = {template_pairs("body", f"clip{i}", given, None)[0].question for i in range(30)}
    assert len(questions) == 3  # the whole pool is used
    assert template_pairs("body", "x", given, None) == template_pairs("body", "x", given, None)


def test_closed_set_emotion_options_are_shuffled_and_answers_balanced():
    letters = Counter()
    for i in range(40):
        emotion = EMOTIONS[i % len(EMOTIONS)]
        pairs = template_pairs("face", f"clip{i}", fields(face__emotion=emotion), None, i)
        (closed,) = [p for p in pairs if p.kind == "closed"]
        options = [line[4:] for line in closed.question.splitlines() if line.startswith("(")]
        assert len(options) == 4 and len(set(options)) == 4 and emotion in options
        letter = closed.answer[1]
        assert options["ABCD".index(letter)] == emotion and closed.answer.endswith(emotion)
        letters[letter] += 1
    assert letters == {"A": 10, "B": 10, "C": 10, "D": 10}


def test_no_duplicate_questions_in_a_clip():
    pairs = template_pairs("body", "c", fields(body__action="running"), None)
    assert len(unique(pairs + pairs)) == len(pairs)


def test_parse_fields_rejects_what_the_schema_forbids():
    good = '{"face": {"appearance": "", "expression": " a  smile ", "emotion": "Happy", "gaze": ""},' \
        ' "body": {"appearance": "", "clothing": "", "action": "", "pose": ""},' \
        ' "interaction": {"with_people": "", "with_objects": "", "environment": ""}}'  # fmt: skip
    parsed = parse_fields(good)
    assert parsed["face"]["expression"] == "a smile" and parsed["face"]["emotion"] == "happy"
    for bad in ("not json", '{"face": {}}', good.replace('"Happy"', '"bored"'),
                good.replace('"pose": ""', '"pose": 3')):  # fmt: skip
        with pytest.raises(FieldsError):
            parse_fields(bad)


def test_export_samples_follow_the_humanomni_format():
    with_sound = sample("c-face", "/clips/c.mp4", True, "face", [("Q1?", "A1."), ("Q2?", "A2.")])
    assert with_sound["conversations"][0]["value"] == "<video>\n<audio>\nQ1?"
    assert [t["from"] for t in with_sound["conversations"]] == ["human", "gpt"] * 2
    assert check_sample(with_sound) == []
    silent = sample("c-face", "/clips/c.mp4", False, "face", [("Q?", "A.")])
    assert silent["conversations"][0]["value"] == "<video>\nQ?" and check_sample(silent) == []
    broken = {**silent, "conversations": silent["conversations"][::-1]}
    assert check_sample(broken)
    assert check_sample({"video": "v", "conversations": [{"from": "human", "value": "Q?"}]})
    tagged = sample("c", "v", False, "face", [("Q?", "A."), ("<video>\nQ2?", "A2.")])
    assert any("first human turn only" in p for p in check_sample(tagged))


def test_instructions_need_a_finished_structure_stage(tmp_path):
    from helpers import run_cli

    from curation.engine.instructions import InstructionsError, check_ready
    from curation.rundir import RunDir

    missing = run_cli("instructions", "--run", "nope", "--set", f"run.root={tmp_path}",
                      check=False)  # fmt: skip
    assert missing.returncode == 2 and "make curate RUN=nope" in missing.stderr
    run = RunDir(tmp_path, "partial")
    run.write_run_json({"stages": {"dedup": {"status": "done"}}})
    with pytest.raises(InstructionsError, match="structure stage has not finished"):
        check_ready(run)


class ScriptedBackend:
    """A test double for the parsing/retry logic: answers from a script, per prompt key."""

    def __init__(self, script):
        self.script, self.calls = script, Counter()

    def generate(self, prompts):
        from curation.backends import Generation

        out = []
        for p in prompts:
            self.calls[p.key] += 1
            out.append(Generation(text=self.script[p.key]))
        return out


def test_llm_questions_are_parsed_retried_and_grounded_on_the_fields():
    import json

    from curation.backends import BackendConfig
    from curation.embed import BUNDLED_MINILM
    from stages.instructions import InstructionsConfig, InstructionsStage

    cfg = InstructionsConfig(backend=BackendConfig(model="scripted"), prompt="{about} {facts} {n}",
                             llm_questions=2, attempts=2, max_field_chars=100,
                             embedder=BUNDLED_MINILM, device="cpu", grounding=0.3)  # fmt: skip
    stage = InstructionsStage(branch="body", cfg=cfg)
    pairs = {"pairs": [{"question": "What is she wearing?", "answer": "A grey sweater."},
                       {"question": "What does she play?", "answer": "She plays the guitar."}]}  # fmt: skip
    backend = ScriptedBackend({"good:body": json.dumps(pairs), "bad:body": "no json"})
    stage._backends[0] = backend  # in place of a loaded model
    given = fields(body__clothing="a grey sweater", body__action="sitting")
    silent = fields(face__emotion="happy")  # nothing about the body: the LLM is not asked
    clips = [{"clip_id": c, "fields": f, "consensus": None, "clip_path": "v.mp4", "has_audio": False}
             for c, f in (("good", given), ("bad", given), ("silent", silent))]  # fmt: skip
    out = stage.process(pa.Table.from_pylist(clips))
    table, extra = pop_extra(out)
    rows = table.to_pylist()
    assert "silent:body" not in backend.calls and {r["clip_id"] for r in rows} == {"good", "bad"}
    assert extra["llm_failed_clips"] == 1 and backend.calls["bad:body"] == 2  # retried, counted
    llm = [r for r in rows if r["kind"] == "llm"]
    assert [r["answer"] for r in llm] == ["A grey sweater."]  # the guitar is invented
    assert extra["llm_ungrounded_pairs"] == 1 and llm[0]["source"] == "scripted"
    assert extra["eligible_clips"] == 2 and extra["kinds"]["open"] == 4


def test_branch_pairs_need_the_boxes_to_show_a_face_or_a_person():
    from stages.instructions import InstructionsConfig, InstructionsStage

    given = fields(face__expression="a broad smile", body__action="waving")

    def clip(cid, faces, persons, sampled=8):
        return {"clip_id": cid, "fields": given, "consensus": None, "clip_path": "v.mp4",
                "has_audio": False, "frames_sampled": sampled, "frames_with_face": faces,
                "frames_with_person": persons}  # fmt: skip

    clips = [clip("seen", 4, 6), clip("no_face", 0, 8), clip("no_person", 8, 1),
             clip("no_boxes", None, None, sampled=None)]  # fmt: skip
    cfg = InstructionsConfig(llm_questions=0)
    for branch, expected, removed in (
        ("face", {"seen", "no_person", "no_boxes"}, {"removed_no_detected_face": 1}),
        ("body", {"seen", "no_face", "no_boxes"}, {"removed_no_detected_person": 1}),
    ):
        table, extra = pop_extra(InstructionsStage(branch=branch, cfg=cfg).process(
            pa.Table.from_pylist(clips)))  # fmt: skip
        assert set(table["clip_id"].to_pylist()) == expected
        assert {k: v for k, v in extra.items() if k.startswith("removed_")} == removed
