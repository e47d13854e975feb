"""The SyncNet backend runs for real on the talking head with weights saved and loaded by path
(random ones: the released file cannot be downloaded here), and fails clearly without them."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch
from helpers import REPO, whole_file_clip

from curation.core import schemas
from curation.core.worker import Worker
from curation.signals import SignalUnavailable, make_backend
from curation.signals.config import LipSyncConfig
from curation.signals.syncnet_model import SyncNet
from stages.signals import SignalsConfig, SignalsStage

TALKING = REPO / "tests" / "assets" / "videos" / "derived_talking_obama_910x1136.mp4"


def test_the_towers_map_windows_to_1024_d_and_the_state_dict_names_match_the_release():
    net = SyncNet().eval()
    with torch.no_grad():
        assert net.audio(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert net.lips(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)
    names = set(net.state_dict())
    # The released file's keys: the four Sequentials of model "S", layer by layer.
    assert {"netcnnaud.0.weight", "netcnnaud.18.weight", "netfcaud.3.weight",
            "netcnnlip.0.weight", "netcnnlip.18.weight", "netfclip.3.bias"} <= names  # fmt: skip
    assert net.state_dict()["netcnnlip.0.weight"].shape == (96, 3, 5, 7, 7)


def test_weights_by_path_score_the_talking_head(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "syncnet_v2.model"
    torch.save(SyncNet().state_dict(), weights)
    stage = SignalsStage(cfg=SignalsConfig(
        lip_sync=LipSyncConfig(kind="syncnet", model=str(weights), max_offset_s=0.4),
        asr=None, pose=None))  # fmt: skip
    stage.bind(schemas.CLIPS)
    stage.setup(Worker.local())
    clip = {**whole_file_clip(TALKING), "end_s": 3.0, "duration_s": 3.0}  # 75 frames
    (row,) = stage.process(pa.Table.from_pylist([clip], schema=schemas.CLIPS)).to_pylist()
    assert row["kept"] and row["signal_models"].endswith(f"lip_sync={weights}")
    # Random weights: no sync to find, but every step ran on real frames and sound.
    assert 0.0 <= row["lip_sync"] <= 1.0 and abs(row["lip_sync_offset_s"]) <= 0.4
    assert row["lip_sync_raw"] >= 0.0


def test_missing_or_foreign_weights_fail_at_setup(tmp_path):
    with pytest.raises(SignalUnavailable, match="signals.lip_sync.model"):
        make_backend("lip_sync", LipSyncConfig(kind="syncnet")).setup("cpu")
    foreign = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(3)}, foreign)
    with pytest.raises(SignalUnavailable, match="not SyncNet's state dict"):
        make_backend("lip_sync", LipSyncConfig(kind="syncnet", model=str(foreign))).setup("cpu")
