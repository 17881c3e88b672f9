"""Comparisons (Markdown, JSON, plot) and report.html: its data, its size with 1,200 samples, and what a real headless
browser shows (skipped when chromium is not installed)."""

import json
import os
import re
import shutil
import subprocess

import pytest
from PIL import Image

from tests.evaluation.conftest import make_result
from trl_unified.evaluation import compare_evaluations, write_report
from trl_unified.evaluation.evaluate import write_evaluation
from trl_unified.evaluation.report_html import report_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_comparison_table_json_and_plot(tmp_path):
    base = make_result("base", {"counting": [0] * 40 + [1] * 10, "single": [1] * 45 + [0] * 5})
    after = make_result("after", {"counting": [0] * 15 + [1] * 35, "single": [1] * 44 + [0] * 6})
    comparison = compare_evaluations([base, after])
    by = {c.category: c for c in comparison.categories}
    assert (
        by["counting"].differences[1].estimate == pytest.approx(0.5) and by["counting"].differences[1].excludes_zero()
    )
    assert not by["single"].differences[1].excludes_zero() and by["all"].values[0].n == 100
    md = comparison.to_markdown()
    assert "| counting | 20.0 [11.2, 33.0] (n=50) | 70.0 [56.2, 80.9] (n=50) | +50.0" in md
    assert re.search(r"\| single \|.*\| -2\.0 \[[^]]*\] \|$", md, re.MULTILINE)  # no `*`: the interval holds zero
    comparison.save(tmp_path)
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["baseline"] == "base" and data["categories"][0]["differences"]["after"]["excludes_zero"] is True
    assert Image.open(tmp_path / "comparison.png").size[0] > 300
    with pytest.raises(ValueError, match="at least two"):
        compare_evaluations([base])
    with pytest.raises(ValueError, match="names must differ"):
        compare_evaluations([base, base])


def _written(tmp_path, name, verdicts, colour):
    result = make_result(name, verdicts)
    write_evaluation(
        result, [Image.new("RGB", (64, 64), colour)] * result.num_samples, tmp_path / name, html_report=False
    )
    return result


def test_report_statuses_and_size_with_1200_samples(tmp_path):
    n = 1200
    base = _written(tmp_path, "base", {"counting": [0, 0, 1, 1] * (n // 8), "position": [0, 1] * (n // 4)}, (200, 0, 0))
    after = _written(
        tmp_path, "after", {"counting": [0, 1, 0, 1] * (n // 8), "position": [1, 1] * (n // 4)}, (0, 200, 0)
    )
    data = report_data([base, after], tmp_path)
    statuses = [item["status"] for item in data["items"]]
    assert len(statuses) == n and statuses[:4] == ["still wrong", "fixed", "broken", "still right"]
    assert statuses.count("fixed") == n // 8 + n // 4
    assert data["items"][0]["cells"][0]["img"].startswith("data:image/png;base64,")  # small images are embedded
    path = write_report([base, after], tmp_path / "report.html")
    assert path.stat().st_size < 3_000_000  # 2,400 images and their rows
    big = _written(tmp_path, "big", {"counting": [1, 0]}, (0, 0, 200))
    big_images = tmp_path / "big_images"
    write_evaluation(big, [Image.new("RGB", (512, 512))] * 2, big_images, html_report=False)
    assert report_data([big], tmp_path)["items"][0]["cells"][0]["img"] == "big_images/images/00000.png"  # linked


def _chromium(url, tmp_path, *args):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args, url], check=False, capture_output=True, text=True, timeout=120)


# CI installs chromium (.ci/run), so there the test never skips: a missing browser fails it.
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed (apt-get install -y chromium)"
)
def test_report_renders_filters_and_pages_in_headless_chromium(tmp_path):
    n = 1200
    base = _written(tmp_path, "base", {"counting": [0, 0, 1, 1] * (n // 8), "position": [0, 1] * (n // 4)}, (200, 0, 0))
    after = _written(
        tmp_path, "after", {"counting": [0, 1, 0, 1] * (n // 8), "position": [1, 1] * (n // 4)}, (0, 200, 0)
    )
    url = write_report([base, after], tmp_path / "report.html").resolve().as_uri()
    dom = _chromium(url + "#category=counting&status=fixed", tmp_path, "--dump-dom").stdout
    cards = re.findall(r'<div class="card" data-category="([^"$]+)" data-status="([^"$]+)"', dom)
    assert cards and set(cards) == {("counting", "fixed")}
    assert len(cards) == 60  # the first page only: more cards are built as the reader scrolls
    assert f"showing 60 of {n // 8} samples ({n} in all)" in dom
    assert "counting</td>" in dom and "+0.0" in dom  # the summary table
    shot = tmp_path / "shot.png"
    result = _chromium(url, tmp_path, "--window-size=1200,900", f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(1 << 20)
    assert len(colours) > 50  # text, tables and pictures, not a blank page
    red_or_green = sum(c for c, (r, g, b) in colours if (r, g, b) in ((200, 0, 0), (0, 200, 0)))
    assert red_or_green > 5 * 128 * 128  # several 128x128 sample pictures are on screen
