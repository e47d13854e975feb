"""Face crops for the face branch: from the curated boxes to the model's face inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_fixtures import VIDEOS

from curation.instructions.exports import largest_face_track, sample
from model.data.dataset import OmniDataset, collate
from model.data.faces import crop_box, face_crops, nearest_box
from model.data.processor import OmniProcessor
from model.data.records import record_from_item

TALKING = str(VIDEOS / "derived_talking_obama_910x1136.mp4")
# The talking head's face, roughly (normalised), over its first seconds.
TRACK = [[t, 0.3, 0.2, 0.7, 0.55] for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]


def test_crop_is_a_square_around_the_box_kept_inside_the_frame():
    assert crop_box([0.4, 0.4, 0.6, 0.6], 100, 100) == (35, 35, 65, 65)  # 20 px + 25% a side
    x0, y0, x1, y1 = crop_box([0.9, 0.0, 1.0, 0.2], 200, 100)  # at the top-right corner
    assert (x1, y0) == (200, 0) and x1 - x0 == y1 - y0 == 30
    assert crop_box([0.0, 0.0, 1.0, 1.0], 160, 90) == (35, 0, 125, 90)  # never past the frame


def test_frames_far_from_every_box_keep_the_whole_frame():
    frames = np.zeros((3, 90, 160, 3), dtype=np.uint8)
    track = [[0.0, 0.4, 0.4, 0.6, 0.6]]
    assert nearest_box(track, 0.9) == [0.4, 0.4, 0.6, 0.6] and nearest_box(track, 1.5) is None
    crops = face_crops(frames, [0.0, 0.9, 2.0], track)
    assert [c.shape[:2] for c in crops] == [(48, 48), (48, 48), (90, 160)]  # 32 px wide + 25%


def test_the_export_carries_the_largest_face_of_every_sampled_frame():
    def box(frame, t, cls, x1, x2):
        return {"frame": frame, "t_s": t, "cls": cls, "nx1": x1, "ny1": 0.1, "nx2": x2, "ny2": 0.5}

    boxes = [box(1, 0.5, "face", 0.1, 0.2), box(1, 0.5, "face", 0.5, 0.9),
             box(0, 0.0, "person", 0.0, 1.0), box(0, 0.0, "face", 0.2, 0.3)]  # fmt: skip
    track = largest_face_track(boxes)
    assert track == [[0.0, 0.2, 0.1, 0.3, 0.5], [0.5, 0.5, 0.1, 0.9, 0.5]]
    item = sample("c-face", TALKING, False, "face", [("Who?", "A man.")], track)
    assert record_from_item(item, "x", VIDEOS, "c").face_track == tuple(tuple(e) for e in track)
    assert "face_track" not in sample("c-face", TALKING, False, "face", [("Who?", "A man.")])


@pytest.mark.parametrize("crops", [True, False])
def test_dataset_gives_the_face_branch_crops_only_when_switched_on(tiny_config, crops):
    processor = OmniProcessor.from_config(tiny_config)
    pairs = [("What emotion does the person show?", "Calm.")]
    with_track = record_from_item(
        sample("a", TALKING, False, "face", pairs, TRACK), "x", VIDEOS, "a"
    )
    without = record_from_item(sample("b", TALKING, False, "face", pairs), "x", VIDEOS, "b")
    data = OmniDataset([with_track, without], processor, face_crops=crops)
    a, b = data[0], data[1]
    assert b.face_pixel_values is None
    batch = collate([a, b], processor.pad_id)
    if not crops:
        assert a.face_pixel_values is None and batch["face_pixel_values"] is None
        return
    assert a.face_pixel_values.shape == a.pixel_values.shape == (8, 3, 84, 84)
    assert not torch.equal(a.face_pixel_values, a.pixel_values)
    # The other video's face branch sees its full frames.
    assert torch.equal(batch["face_pixel_values"][1], b.pixel_values)
