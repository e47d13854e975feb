"""Config of `make export` (curation/export/): which clips can train which condition of
OmniHuman-1, and how its three training stages mix them. The `export:` section of a run's config
(curation/engine/config.py)."""

from __future__ import annotations

from pydantic import Field

from curation.core.config import Section


class OmniHumanConfig(Section):
    """OmniHuman-1's mixed-condition data (curation/export/omnihuman.py)."""

    # Audio-driven training needs speech that the visible mouth speaks, in step with it.
    min_speech_s: float = Field(1.0, ge=0, description="audio condition: seconds of speech")
    min_lip_sync: float = Field(0.5, ge=0, le=1, description="audio condition: lowest lip_sync")
    max_offset_s: float = Field(
        0.2, ge=0, description="audio condition: largest |lip_sync_offset_s|"
    )
    min_pose_visible: float = Field(
        0.5, ge=0, le=1, description="pose condition: lowest pose_visible (share of joints in view)"
    )
    # The paper's two rules: stronger-condition stages reuse weaker-condition data, and the
    # stronger the condition the lower its ratio (here by construction: a pose sample also
    # gets audio, an audio sample text); its ablation settled on these two shares.
    weaker_share: float = Field(
        0.5, ge=0, lt=1, description="share of a stage's samples that train the weaker task only"
    )
    pose_share: float = Field(
        0.5, gt=0, le=1, description="final stage: share of samples given the pose condition"
    )


class VispeakConfig(Section):
    """ViSpeak-Instruct's items (curation/export/vispeak.py). The frame settings are those
    ViSpeak's loader samples clips with in its stage 3 (frames per second, and the least and
    most frames a clip gets); the items are timed against exactly those frames."""

    min_confidence: float = Field(0.5, ge=0, le=1, description="weaker events make no item")
    min_span_s: float = Field(
        2.0, gt=0, description="a triggered reply's timespan: the event widened to this"
    )
    frame_rate: float = Field(1.0, gt=0, description="ViSpeak's video_framerate")
    min_frames: int = Field(8, ge=1, description="ViSpeak stage 3: 4 x minimal_image_ratio")
    max_frames: int = Field(64, ge=1, description="ViSpeak stage 3: 16 x pooling_size^2")


class ExportConfig(Section):
    omnihuman: OmniHumanConfig = OmniHumanConfig()
    vispeak: VispeakConfig = VispeakConfig()
