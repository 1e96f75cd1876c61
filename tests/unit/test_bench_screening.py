"""`safety bench screening --baseline DIR`: two real model folders measured side by side in one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from core.screening.model import DEFAULT_MODEL_DIR
from ops.cli.bench import app

runner = CliRunner()


def test_baseline_side_by_side_reports_both_models_and_ratios(tmp_path: Path) -> None:
    base = tmp_path / "baseline"
    shutil.copytree(DEFAULT_MODEL_DIR, base)
    res = runner.invoke(app, ["screening", "--baseline", str(base), "--n", "30", "--rounds", "1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert set(out) == {"baseline", "model", "ratio"}
    for side in ("baseline", "model"):
        r = out[side]
        assert r["n"] == 30 and r["rounds"] == 1
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["load_s"] > 0 and r["rss_mb"] > 0
        assert r["prescreen_msgs_per_s"] > 0 and r["prescreen_threads"] == 2  # the API's batch-ingest prescreen
        assert 0 <= r["clean_path_share"] <= 1
    assert out["baseline"]["model_dir"] == str(base)
    assert out["ratio"]["p99_ms"] == round(out["model"]["p99_ms"] / out["baseline"]["p99_ms"], 2)
    # the same model on both sides takes the same messages down the clean path
    assert out["baseline"]["clean_path_share"] == out["model"]["clean_path_share"]


def test_baseline_must_be_a_model_folder(tmp_path: Path) -> None:
    res = runner.invoke(app, ["screening", "--baseline", str(tmp_path), "--n", "5"])
    assert res.exit_code == 2
    assert "model.json" in res.output
