"""The judge's config: a wrong field is named, its value (maybe a key) never printed."""

from __future__ import annotations

import pytest

from model.eval.judge import judged_means, load_judge


def test_a_bad_judge_config_names_the_field_and_hides_its_value(tmp_path):
    path = tmp_path / "judge.yaml"
    path.write_text("kind: openai\nmodel: judge\napi_key: sk-very-secret\n")
    with pytest.raises(ValueError, match="api_key: Extra inputs are not permitted") as caught:
        load_judge(path)
    assert "sk-very-secret" not in str(caught.value)


def test_the_means_leave_out_what_the_judge_could_not_give():
    rows = [{"dimension": "detail", "score": s} for s in (4, 2, None)]
    means = judged_means(rows)
    assert means["judge_detail"] == 3.0 and means["judge_failed"] == pytest.approx(1 / 3)
