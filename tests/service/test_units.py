"""Pieces without a model: file readers of the CLI, settings from the environment, exposition."""

import json
import math
import re
from pathlib import Path

import pytest

from index.collection import Collection
from index.snapshots import Settings
from service.cli import _parser, main
from service.cli_client import _filter_item
from service.config import ENV_PREFIX, OTHER_PROGRAMS, ServerSettings
from service.sources import SourceError, read_documents
from service.telemetry import Telemetry, render


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        {"id": "a", "text": "first", "metadata": {"lang": "en"}},
        {"text": "second"},
        {"id": 3, "text": "third"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert read_documents(path) == [
        {"id": "a", "text": "first", "metadata": {"lang": "en"}},
        {"id": "docs.jsonl:2", "text": "second"},  # stable: a re-run gives the same id
        {"id": "3", "text": "third"},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a"}\n{"text": ', "docs.jsonl:2: not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"metadata": {}}', "text must be a string"),
        ('{"text": 5}', "text must be a string"),
        ('{"_id": "1", "text": "a"}', "unknown key(s) _id"),
        ('{"text": "a", "metadata": [1]}', "metadata must be an object"),
        ('{"text": "a", "id": true}', "id must be a string or an integer"),
        ("\n\n", "no documents"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_documents(path)


def test_parquet(tmp_path: Path) -> None:
    """Parquet reads like csv: text, optional id (a row without one gets FILE:ROW), the other
    columns as metadata; a bad row is named by its number."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow comes with the distributed extra")
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["a", None, "c"],
                "text": ["first", "second", "third"],
                "year": [2020, None, 2022],
                "lang": ["en", "de", None],
            }
        ),
        path,
    )
    assert read_documents(path) == [
        {"id": "a", "text": "first", "metadata": {"year": 2020, "lang": "en"}},
        {"id": "docs.parquet:2", "text": "second", "metadata": {"lang": "de"}},
        {"id": "c", "text": "third", "metadata": {"year": 2022}},
    ]
    pq.write_table(pa.table({"text": ["ok", None]}), bad := tmp_path / "bad.parquet")
    with pytest.raises(SourceError, match=r"bad\.parquet row 2: the text column is null"):
        read_documents(bad)
    pq.write_table(pa.table({"text": [1, 2]}), numeric := tmp_path / "n.parquet")
    with pytest.raises(SourceError, match="row 1: the text column is not text"):
        read_documents(numeric)
    pq.write_table(pa.table({"body": ["x"]}), headless := tmp_path / "h.parquet")
    with pytest.raises(SourceError, match="needs a 'text' column"):
        read_documents(headless)
    pq.write_table(pa.table({"text": ["x"], "blob": [b"\x00"]}), binary := tmp_path / "b.parquet")
    with pytest.raises(SourceError, match="row 1: column 'blob' holds bytes"):
        read_documents(binary)
    (broken := tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        read_documents(broken)


def test_beir_fields(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        '{"_id": "4983", "title": "A title.", "text": "The abstract."}\n'
        '{"_id": "5", "title": "", "text": "No title."}\n'
    )
    fields = {"id_field": "_id", "text_fields": ["title", "text"]}
    assert read_documents(path, **fields) == [
        {"id": "4983", "text": "A title. The abstract."},
        {"id": "5", "text": "No title."},
    ]
    with pytest.raises(SourceError, match="unknown key"):
        read_documents(path)
    table = tmp_path / "t.tsv"
    table.write_text("doc\thead\tbody\n7\tHead\tBody\n")
    rows = read_documents(table, id_field="doc", text_fields=["head", "body"])
    assert rows == [{"id": "7", "text": "Head Body"}]
    with pytest.raises(SourceError, match="needs a 'x' column"):
        read_documents(table, text_fields=["head", "body", "x"])


def test_txt(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("one line\n\n  two line  \n")
    assert read_documents(path) == [
        {"id": "lines.txt:1", "text": "one line"},
        {"id": "lines.txt:3", "text": "two line"},
    ]


def test_csv_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text('id,text,lang\nx1,"Hello, ""world""",en\n,second,\n')
    assert read_documents(path) == [
        {"id": "x1", "text": 'Hello, "world"', "metadata": {"lang": "en"}},
        {"id": "table.csv:3", "text": "second"},
    ]
    tsv = tmp_path / "table.tsv"
    tsv.write_text('text\tsource\n"two\nlines"\tsep\nA tab\tsep\n')
    assert read_documents(tsv) == [
        {"id": "table.tsv:2", "text": "two\nlines", "metadata": {"source": "sep"}},
        {"id": "table.tsv:4", "text": "A tab", "metadata": {"source": "sep"}},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,x\n")
    with pytest.raises(SourceError, match="'text' column"):
        read_documents(bad)
    empty = tmp_path / "empty.csv"  # an empty text is a document (issue 17 item 9)
    empty.write_text("text,lang\n,en\n")
    assert read_documents(empty) == [{"id": "empty.csv:2", "text": "", "metadata": {"lang": "en"}}]


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="--format"):
        read_documents(tmp_path / "docs.xlsx")
    with pytest.raises(SourceError, match="No such file"):
        read_documents(tmp_path / "missing.parquet")
    with pytest.raises(SourceError, match="No such file"):
        read_documents(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(SourceError, match="UTF-8"):
        read_documents(latin)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WHITENED_SEARCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WHITENED_SEARCH_K", "128")
    monkeypatch.setenv("WHITENED_SEARCH_API_KEY", "k")
    monkeypatch.setenv("WHITENED_SEARCH_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("WHITENED_SEARCH_ALLOWED_MODELS", '["/models/x"]')
    settings = ServerSettings()
    assert settings.data_dir == tmp_path and settings.k == 128
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k"
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert settings.allowed_models == ["/models/x"]
    monkeypatch.setenv("WHITENED_SEARCH_API_KEY", "")
    assert ServerSettings().api_key is None
    monkeypatch.setenv("WHITENED_SEARCH_BETA", "nan")
    with pytest.raises(ValueError, match="finite"):
        ServerSettings()


def test_server_and_library_share_one_default_per_collection_setting(tmp_path: Path) -> None:
    """Issue 13: the server's collection defaults are the library's, k capped for small models."""
    assert ServerSettings().collection_settings(384) == Settings()
    small = ServerSettings().collection_settings(64)
    Collection.create(tmp_path / "c", "m", 64)
    assert small == Settings(k=64) == Collection(tmp_path / "c").manifest.settings


def test_prometheus_exposition() -> None:
    telemetry = Telemetry()
    telemetry.observe_request("GET", "/collections/{name}", 200, 0.003)
    telemetry.observe_request("GET", "/collections/{name}", 200, 0.2)
    telemetry.observe_request("GET", 'we"ird\\', 404, 100.0)
    telemetry.observe_encode("query", 0.05, 3)
    text = render(telemetry.families())
    lines = text.splitlines()
    route = 'method="GET",route="/collections/{name}"'
    assert f'whitened_search_http_requests_total{{{route},status="200"}} 2' in lines
    bucket = f"whitened_search_http_request_duration_seconds_bucket{{{route}"
    assert f'{bucket},le="0.005"}} 1' in lines
    assert f'{bucket},le="0.25"}} 2' in lines
    assert f'{bucket},le="+Inf"}} 2' in lines
    assert 'route="we\\"ird\\\\"' in text
    assert 'whitened_search_encoded_texts_total{operation="query"} 3' in lines
    total = next(
        line
        for line in lines
        if line.startswith(
            'whitened_search_http_request_duration_seconds_sum{method="GET",route="/collections'
        )
    )
    assert math.isclose(float(total.rsplit(" ", 1)[1]), 0.203)
    assert text.endswith("\n")


def test_cli_arguments() -> None:
    args = _parser().parse_args(["ingest", "f.jsonl", "-c", "news", "--create", "--k", "128"])
    assert args.collection == "news" and args.create and args.k == 128 and args.batch == 256
    with pytest.raises(SystemExit):
        _parser().parse_args(["ingest", "f.jsonl"])  # --collection is required
    with pytest.raises(SystemExit):
        _parser().parse_args(["query", "x", "-c", "n", "--top-k", "0"])
    assert _filter_item("n=3") == ("n", 3)
    assert _filter_item("flag=true") == ("flag", True)
    assert _filter_item("lang=en") == ("lang", "en")
    assert _filter_item("path=a=b") == ("path", "a=b")


def test_query_batching_defaults_to_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServerSettings(backend="torch").query_batch_seconds() == pytest.approx(0.002)
    assert ServerSettings(backend="onnx").query_batch_seconds() == 0.0
    assert ServerSettings(backend="onnx-int8", query_batch_ms=5).query_batch_seconds() == 0.005
    monkeypatch.setenv("WHITENED_SEARCH_QUERY_BATCH_MS", "")
    assert ServerSettings(backend="torch").query_batch_ms is None
    with pytest.raises(ValueError, match="query_batch_ms"):
        ServerSettings(query_batch_ms=-1)


def test_a_misspelt_setting_is_refused_naming_the_nearest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: WHITENED_SEARCH_BACKNED=torch was ignored silently (extra="ignore")."""
    monkeypatch.setenv("WHITENED_SEARCH_BACKNED", "torch")
    with pytest.raises(ValueError, match="did you mean WHITENED_SEARCH_BACKEND"):
        ServerSettings()
    monkeypatch.delenv("WHITENED_SEARCH_BACKNED")
    monkeypatch.setenv("WHITENED_SEARCH_URL", "http://127.0.0.1:9")  # the CLI's, not the server's
    assert ServerSettings().backend


def test_an_empty_k_is_every_dimension(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's settings table says `K` empty is d; it was parsed as an integer and the
    server refused to start."""
    monkeypatch.setenv("WHITENED_SEARCH_K", "")
    assert ServerSettings().k is None  # the library's k=None: every dimension
    assert ServerSettings().collection_settings(384).k is None


ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = (
    "README.md",
    "docs",
    "pyproject.toml",
    "Dockerfile",
    "docker-compose.yml",
    "docker-compose.ray.yml",
    "tests/docker/smoke.sh",
)


def test_every_variable_the_project_names_is_one_the_server_accepts() -> None:
    """pyproject's faults marker named WHITENED_SEARCH_FAULT_KILLS and docker-compose.ray.yml
    WHITENED_SEARCH_RAY_IMAGE: the server refuses unknown variables of its prefix, so following
    either stopped every server from starting."""
    known = {name.upper() for name in ServerSettings.model_fields} | set(OTHER_PROGRAMS)
    named: dict[str, str] = {}
    for entry in DOCUMENTED:
        paths = sorted((ROOT / entry).glob("*.md")) if (ROOT / entry).is_dir() else [ROOT / entry]
        for path in paths:
            for name in re.findall(ENV_PREFIX + r"([A-Z][A-Z_]*[A-Z])", path.read_text()):
                named.setdefault(name, str(path.relative_to(ROOT)))
    named.pop("BACKNED")  # the README's example of a misspelt variable the server refuses
    assert {"API_KEY", "RAY_IMAGE"} <= named.keys()
    assert {name: where for name, where in named.items() if name not in known} == {}


def test_the_cli_tells_a_bad_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`query` reads the server's settings for its address and key: a bad one was pydantic's
    traceback, not the one line every other CLI failure is."""
    monkeypatch.setenv("WHITENED_SEARCH_BETA", "nan")
    assert main(["query", "x", "-c", "news", "--url", "http://127.0.0.1:9"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("whitened-search: error: invalid settings: BETA:"), error
    assert "Traceback" not in error and len(error.splitlines()) == 1
