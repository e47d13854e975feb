"""Speaker-specific speech pairs: who the speaker is called, and which clips get a pair."""

from __future__ import annotations

from curation.instructions.speech import QUESTIONS, speaker, speech_pairs, why_not


def fields(appearance="", clothing="", face=""):
    return {"body": {"appearance": appearance, "clothing": clothing},
            "face": {"appearance": face}}  # fmt: skip


def test_the_speaker_is_named_from_the_fields():
    assert (
        speaker(fields("a young woman with long hair", "a red coat")) == "the woman in a red coat"
    )
    assert (
        speaker(fields("a tall man", "wearing a dark suit, a white shirt"))
        == "the man in a dark suit"
    )
    assert speaker(fields("", "", "an older man with glasses")) == "the man"
    assert speaker(fields("slim build")) == "the person"  # no person noun: never guessed
    assert speaker(None) == "the person"
    wordy = "a long coat with many pockets that reaches down to the ankles of the wearer"
    assert speaker(fields("a woman", wordy)) == "the woman"


def face(frame):
    return {"frame": frame, "cls": "face"}


def clip(**signals):
    base = {"clip_id": "c1", "transcript": " Good morning. ", "lip_sync": 0.8,
            "lip_sync_offset_s": 0.04, "boxes": [face(0), face(1), face(2)],
            "fields": fields("a woman", "a blue dress")}  # fmt: skip
    return {**base, **signals}


def test_only_one_lip_synced_speaker_in_step_gets_a_pair():
    assert why_not(clip(), 0.5, 0.2) is None
    assert why_not(clip(transcript=None), 0.5, 0.2) == "no_transcript"
    assert why_not(clip(lip_sync=None), 0.5, 0.2) == "not_lip_synced"
    assert why_not(clip(lip_sync=0.3), 0.5, 0.2) == "not_lip_synced"
    assert why_not(clip(lip_sync_offset_s=-1.0), 0.5, 0.2) == "audio_out_of_step"
    two = [face(0), face(0), face(1), face(1)]
    assert why_not(clip(boxes=two), 0.5, 0.2) == "not_one_face"
    stray = [face(0), face(1), face(1), face(2)]  # one false face in one frame of three
    assert why_not(clip(boxes=stray), 0.5, 0.2) is None


def test_the_pair_asks_about_the_speaker_and_answers_with_the_transcript():
    (pair,) = speech_pairs(clip())
    assert pair.answer == "Good morning." and pair.kind == "speech"
    k = int(pair.source.split(".")[1])
    assert pair.question == QUESTIONS[k].format(speaker="the woman in a blue dress")
