"""Config of human annotation (`make annotate`, curation/annotate/): the `annotate:` section
of a run's config. It changes no manifest, so a run may resume with other values."""

from __future__ import annotations

from pydantic import Field

from curation.core.config import Section


class AnnotateConfig(Section):
    url: str = Field(
        "http://127.0.0.1:8080", description="the Label Studio server (make annotate-server's)"
    )
    # The token is read from this environment variable (or from the local server's own file):
    # never written into the config, run.json or the logs.
    token_env: str = Field(
        "LABEL_STUDIO_TOKEN", description="environment variable with the API token"
    )
    seed: int = Field(0, description="which clips are drawn")
    overlap_share: float = Field(
        0.1, ge=0, le=1, description="share of clips given to two annotators, for agreement"
    )
