"""The READMEs' tables are what `python -m bench render` makes of the committed result files."""

import json
import shutil
from pathlib import Path

import pytest

from bench import render
from bench.render_tables import RENDERERS
from bench.report import RESULTS_DIR


@pytest.mark.parametrize(
    "document", render.DOCUMENTS, ids=lambda path: str(path.relative_to(render.REPOSITORY))
)
def test_committed_tables_equal_their_render(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert render.blocks(text), f"{document} has no render blocks"
    assert render.render(text, RESULTS_DIR) == text, (
        f"a table in {document} differs from bench/results: run `python -m bench render` "
        "(or `python -m bench render --check` to see the difference)"
    )


def test_a_changed_result_changes_the_table(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(RESULTS_DIR, results)
    path = results / "quality_stsb.json"
    figures = json.loads(path.read_text(encoding="utf-8"))
    figures["raw"][0] = 0.5
    path.write_text(json.dumps(figures), encoding="utf-8")
    readme = render.DOCUMENTS[0].read_text(encoding="utf-8")
    rendered = render.render(readme, results)
    assert rendered != readme
    assert "| raw cosine | 50.00 |" in rendered


def test_an_unknown_block_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown render block 'nope'"):
        render.render("<!-- render: nope -->\n| a |\n<!-- /render -->\n", RESULTS_DIR)


def test_a_table_of_rates_names_the_cpu_of_its_results(tmp_path: Path) -> None:
    """A rate measured on another CPU must not read as this one's: the block says each file's
    CPU, and says so when a run did not record it."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS_DIR, results)
    plan = RENDERERS["plan-100m"]
    recorded = json.loads((results / "encoders.json").read_text(encoding="utf-8"))["host"]
    for name in ("distributed.json", "encoders.json", "statistics.json"):
        figures = json.loads((results / name).read_text(encoding="utf-8"))
        figures["host"] = recorded
        (results / name).write_text(json.dumps(figures), encoding="utf-8")
    named = plan(results)
    assert named.count("CPU: ") == 1, "files of one CPU share one sentence"
    assert f"CPU: {recorded['cpu']} ({recorded['family_model_stepping']}" in named
    assert "(`distributed.json`, `encoders.json`, `statistics.json`)" in named
    figures = json.loads((results / "statistics.json").read_text(encoding="utf-8"))
    del figures["host"]
    (results / "statistics.json").write_text(json.dumps(figures), encoding="utf-8")
    assert "CPU: not recorded (`statistics.json`)." in plan(results)
