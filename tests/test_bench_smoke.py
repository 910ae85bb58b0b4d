"""The benchmarks' smoke modes run end to end (tiny sizes) and write their tables and plots.

The full runs are not part of the suite (minutes each, see bench/README.md); these keep them from
rotting. The quality smoke run needs ../shared/data and skips without it.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import build_parser, main
from bench.cache import EmbeddingCache, texts_key
from bench.data import load_scifact, load_stsb

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _require(data_dir: Path) -> None:
    needed = [
        data_dir / "stsb" / "sts-test.csv",
        data_dir / "scifact" / "corpus.jsonl",
        data_dir / "scifact" / "qrels" / "test.tsv",
    ]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        pytest.skip(
            f"evaluation data not found ({', '.join(missing)}): "
            "set WHITENED_TEST_DATA to the folder holding stsb/ and scifact/"
        )


@pytest.fixture(scope="module")
def quality_smoke(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """One `python -m bench quality --smoke` run, with its own empty embedding cache."""
    _require(data_dir)
    out = tmp_path_factory.mktemp("quality")
    argv = ["quality", "--smoke", "--quiet", "--out", str(out), "--data", str(data_dir)]
    assert main([*argv, "--cache-dir", str(out / "cache")]) == 0
    return out


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name", ["quality_stsb", "quality_scifact"])
def test_quality_smoke_writes_a_table_a_plot_and_figures(quality_smoke: Path, name: str) -> None:
    table = (quality_smoke / f"{name}.md").read_text(encoding="utf-8")
    assert "SMOKE RUN" in table
    assert "| setting | k=384 | k=64 | k=32 |" in table
    for row in ("bytes/vector, float32 (4·k) | 1536 | 256 | 128 |", "raw cosine", "β=γ=1"):
        assert row in table
    png = (quality_smoke / f"{name}.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    figures = json.loads((quality_smoke / f"{name}.json").read_text(encoding="utf-8"))
    assert figures["smoke"] is True
    assert set(figures["rows"]) >= {"rotation", "centre", "half", "whiten", "tuned"}
    assert all(set(cells) == {"384", "64", "32"} for cells in figures["rows"].values())


@pytest.mark.data
@pytest.mark.slow
def test_quality_smoke_numbers_are_sane(quality_smoke: Path) -> None:
    stsb = json.loads((quality_smoke / "quality_stsb.json").read_text(encoding="utf-8"))
    assert 0.6 < stsb["raw"][0] < 1.0
    # β=γ=0 at k=d is a rotation: every cosine, hence the score, is the raw one.
    assert stsb["rows"]["rotation"]["384"]["scores"][0] == pytest.approx(stsb["raw"][0], abs=1e-4)
    assert stsb["rows"]["whiten"]["384"]["k_used"] == min(stsb["ranks"].values())
    scifact = json.loads((quality_smoke / "quality_scifact.json").read_text(encoding="utf-8"))
    ndcg, recall = scifact["raw"]
    assert 0.3 < ndcg <= 1.0
    assert 0.5 < recall <= 1.0
    assert scifact["queries_judged"]["test"] >= 10
    rotation = scifact["rows"]["rotation"]["384"]["scores"]
    assert rotation == pytest.approx(scifact["raw"], abs=1e-3)


@pytest.mark.data
def test_the_loaders_read_the_data_as_the_reference_did(data_dir: Path) -> None:
    _require(data_dir)
    stsb = load_stsb(data_dir)
    assert len(stsb.sentences) == 15487
    assert {split: len(pairs) for split, pairs in stsb.splits.items()} == {
        "train": 5749,
        "dev": 1500,
        "test": 1379,
    }
    scifact = load_scifact(data_dir)
    assert len(scifact.documents) == 5183 and len(scifact.queries) == 1109
    assert len(scifact.judged("test")[1]) == 300 and len(scifact.judged("train")[1]) == 809
    small = load_scifact(data_dir, limit_docs=200)
    assert len(small.documents) == 200
    kept = set(small.doc_ids)
    for split in ("train", "test"):
        rows, judged = small.judged(split)
        assert len(rows) >= 10 and all(set(grades) <= kept for grades in judged)


class CountingEncoder:
    vectors_id = "test/fake-model"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, progress=False):
        self.calls += 1
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_the_cache_encodes_each_text_list_once(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(encoder, ["a", "bb"])
    again = EmbeddingCache(tmp_path).encode(encoder, ["a", "bb"])
    assert encoder.calls == 1
    np.testing.assert_array_equal(first, again)
    cache.encode(encoder, ["bb", "a"])  # another order is another list
    assert encoder.calls == 2
    assert texts_key("m", ["ab", "c"]) != texts_key("m", ["a", "bc"])
    assert texts_key("m", ["a"]) != texts_key("n", ["a"])
    assert not list(tmp_path.glob("*.tmp"))
    EmbeddingCache(tmp_path, enabled=False).encode(encoder, ["a", "bb"])
    assert encoder.calls == 3


@pytest.mark.data
def test_a_peers_run_on_part_of_scifact_is_named_apart_from_the_whole(data_dir: Path) -> None:
    """`bench peers --docs 1024` wrote peers.json, over the whole corpus's committed table."""
    from bench.peers import result_name
    from bench.peers_data import Bench

    _require(data_dir)
    names = {}
    for extra in ([], ["--docs", "300"], ["--docs", "300", "--encoder", "shared"]):
        args = build_parser().parse_args(["peers", "--data", str(data_dir), *extra])
        bench = Bench.load(data_dir, args)
        names[" ".join(extra)] = (result_name(bench), len(bench.doc_ids))
    assert names[""] == ("peers", 5183)
    subset = names["--docs 300"][1]
    assert subset < 5183
    assert names["--docs 300"][0] == f"peers_scifact_{subset}"
    assert names["--docs 300 --encoder shared"][0] == f"peers_shared_scifact_{subset}"


@pytest.mark.data
@pytest.mark.slow
def test_peers_smoke_measures_ours_and_each_installed_peer(tmp_path: Path, data_dir: Path) -> None:
    """`python -m bench peers --smoke`: ours over HTTP and in process; each peer whose venv exists
    (bench/.peers/, made by --setup) in its own, the others skipped with how to make it."""
    from bench.peers import PEERS, PEERS_DIR

    _require(data_dir)
    argv = ["peers", "--smoke", "--quiet", "--out", str(tmp_path), "--data", str(data_dir)]
    assert main(argv) == 0
    figures = json.loads((tmp_path / "peers.json").read_text(encoding="utf-8"))
    table = (tmp_path / "peers.md").read_text(encoding="utf-8")
    assert "SMOKE RUN" in table and "| system | setting | ingest docs/s |" in table
    assert "encoder alone" not in table  # each system on its own encoder: no shared one to time
    assert figures["repeats"] == 1 and figures["load_average"]
    ours = [row for row in figures["rows"] if row["system"] == "ours, HTTP service"]
    default = next(row for row in ours if row["setting"].startswith("service defaults"))
    exact = next(row for row in ours if "exact cosine" in row["setting"])
    embedded = next(row for row in figures["rows"] if row["system"].startswith("ours, embedded"))
    assert default["documents"] == 150 and default["queries"] == figures["queries"] >= 10
    assert default["ingest_docs_per_s"] > 0 and exact["refit_seconds"] > 0
    assert all(row["load_average_start"] and row["repetition"] == 1 for row in ours)
    # Each pass's wall time is kept, so the table says how long the run took.
    assert all(row["pass_seconds"] > 0 for row in figures["rows"])
    assert "The passes took " in table
    # The CPU is recorded and named: the same code runs at other rates on another host.
    assert figures["host"]["cores"] == os.cpu_count() and figures["host"]["family_model_stepping"]
    assert f"CPU: {figures['host']['cpu']}" in table
    assert 0.3 < default["ndcg_at_10"] <= 1.0 and 0.3 < exact["ndcg_at_10"] <= 1.0
    # The refit swaps SQ8 codes of k=128 bytes for the Flat index (4·d bytes a vector).
    assert exact["disk_bytes_per_doc"] > default["disk_bytes_per_doc"]
    assert embedded["same_rankings_as_http"] == 1.0 and embedded["setting"] == exact["setting"]
    assert embedded["ndcg_at_10"] == exact["ndcg_at_10"] and embedded["encode_ms_p50"] > 0
    assert default["peak_rss_mib"] > 100 and embedded["peak_rss_mib"] > 100
    assert default["http"] and default["queries_per_s"] > 0 and not embedded["http"]
    for peer in PEERS:
        reason = peer.missing(PEERS_DIR)
        measured = [row for row in figures["rows"] if row["system"] == peer.name]
        if reason is not None:
            assert not measured and reason in figures["skipped"] and "--setup" in table
            continue
        assert measured and measured[0]["ingest_docs_per_s"] > 0
        assert measured[0]["disk_bytes_per_doc"] > 0 and measured[0]["peak_rss_mib"] > 100
        # Same documents, queries and model (each run its own way): exact search agrees with ours.
        peer_exact = [row for row in measured if "exact" in row["setting"] or peer.name == "chroma"]
        assert peer_exact[-1]["ndcg_at_10"] == pytest.approx(exact["ndcg_at_10"], abs=0.02)
        served = [row for row in figures["rows"] if row["system"] == f"{peer.name}, HTTP"]
        if peer.http:  # its own server over the same directory answers as the library does
            assert served and served[0]["http"] and served[0]["queries_per_s"] > 0
            assert served[0]["ndcg_at_10"] == pytest.approx(measured[0]["ndcg_at_10"], abs=0.005)
        else:
            assert not served


def test_peers_smoke_on_one_encoder_runs_every_system_through_it(
    tmp_path: Path, data_dir: Path
) -> None:
    """`python -m bench peers --smoke --encoder shared`: ours on its torch backend with query
    batching off, each installed peer through the shared encoder with the same pinned pools; the
    same vectors, so every exact search scores as ours does."""
    from bench.peers import PEERS, PEERS_DIR
    from bench.peers_data import SHARED

    _require(data_dir)
    argv = ["peers", "--smoke", "--quiet", "--encoder", "shared", "--out", str(tmp_path)]
    assert main([*argv, "--data", str(data_dir)]) == 0
    assert not (tmp_path / "peers.json").exists()
    figures = json.loads((tmp_path / "peers_shared.json").read_text(encoding="utf-8"))
    assert figures["shared_encoder"] == SHARED.describe()
    table = (tmp_path / "peers_shared.md").read_text(encoding="utf-8")
    assert "one encoder: every system encodes" in table
    ours = [row for row in figures["rows"] if row["system"] == "ours, HTTP service"]
    assert all(row["server_settings"] == SHARED.server_settings() for row in ours)
    exact = next(row for row in ours if "exact cosine" in row["setting"])
    assert [row["system"] for row in figures["rows"] if row["http"]] == [r["system"] for r in ours]
    # After each pass the encoder alone: each row reads its latency against it.
    assert all(row["encoder_alone_ms_p50"] > 0 for row in figures["rows"])
    assert "| encoder alone p50 ms | p50 over the encoder ms |" in table
    embedded = next(row for row in figures["rows"] if row["system"].startswith("ours, embedded"))
    over = embedded["query_ms_p50"] - embedded["encoder_alone_ms_p50"]
    assert f"| {embedded['encoder_alone_ms_p50']:.1f} | {over:.1f} |" in table
    # And ours' encoder alone beside it: what ours' encoding code adds to the bare encoder.
    assert all(row["ours_encoder_alone_ms_p50"] > 0 for row in figures["rows"])
    assert "ours' encoding code adds" in table
    # Both encode the corpus's first documents too: every ingest is read against that rate.
    rates = ("encoder_alone_docs_per_s", "ours_encoder_alone_docs_per_s")
    assert all(row[rate] > 0 for row in figures["rows"] for rate in rates)
    assert re.search(r"ingest over the encoder alone: .*ours, HTTP service \d+\.\d\d", table)
    # In process, each query's encoding beside the same text encoded alone right after it.
    assert 0 < embedded["encode_alone_ms_p50"] < embedded["query_ms_p50"]
    assert "query by query in its process" in table
    for peer in PEERS:
        measured = [row for row in figures["rows"] if row["system"] == peer.name]
        if peer.missing(PEERS_DIR) is not None:
            continue
        assert measured and f"({SHARED.threads} threads)" in measured[0]["setting"]
        assert measured[0]["ndcg_at_10"] == pytest.approx(exact["ndcg_at_10"], abs=0.005)


def test_peers_smoke_on_reuters_scores_against_exact_search(tmp_path: Path, data_dir: Path) -> None:
    """`python -m bench peers --smoke --corpus reuters --systems ours`: distinct sentences, the
    next ones as queries, each ranking scored by recall@10 against the exact top 10."""
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")
    argv = ["peers", "--smoke", "--quiet", "--corpus", "reuters", "--systems", "ours"]
    assert main([*argv, "--out", str(tmp_path), "--data", str(data_dir)]) == 0
    figures = json.loads((tmp_path / "peers_reuters_150.json").read_text(encoding="utf-8"))
    table = (tmp_path / "peers_reuters_150.md").read_text(encoding="utf-8")
    assert figures["corpus"] == "reuters" and "distinct Reuters sentences" in table
    assert "recall@10 vs exact" in table and "nDCG@10" not in table
    exact = next(row for row in figures["rows"] if "exact cosine" in row["setting"])
    # ours encodes with ONNX, the truth with torch: the same vectors to 1e-5, the same top 10
    assert exact["recall_at_10_exact"] >= 0.95 and exact["ndcg_at_10"] is None


@pytest.mark.data
@pytest.mark.slow
def test_a_killed_peers_run_resumes_from_its_kept_pass(tmp_path: Path, data_dir: Path) -> None:
    """`bench peers --resume`: a run killed (bench, server and all) after its first pass goes on
    from the partial file: that pass is not measured again, the second is, and the result file
    holds both; a resume with other options is refused."""
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")

    def argv(repeats: int) -> list[str]:
        options = ["--smoke", "--quiet", "--corpus", "reuters", "--systems", "ours"]
        return ["peers", *options, "--repeats", str(repeats), "--out", str(tmp_path),
                "--data", str(data_dir)]  # fmt: skip

    partial = tmp_path / "peers_reuters_150.partial.json"
    # The killed run cannot remove its work directory: it goes under tmp_path, not /tmp.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.Popen(
        [sys.executable, "-m", "bench", *argv(2)], start_new_session=True, env=env
    )
    try:
        deadline = time.monotonic() + 600
        while not partial.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert list(tmp_path.glob("bench-peers-*")), "the killed run's directory is not in tmp_path"
    kept = json.loads(partial.read_text(encoding="utf-8"))
    assert {row["repetition"] for row in kept["rows"]} == {1}
    assert not (tmp_path / "peers_reuters_150.json").exists()
    with pytest.raises(SystemExit, match="other repeats"):
        main([*argv(3), "--resume"])
    assert main([*argv(2), "--resume"]) == 0
    figures = json.loads((tmp_path / "peers_reuters_150.json").read_text(encoding="utf-8"))
    assert [row for row in figures["rows"] if row["repetition"] == 1] == kept["rows"]
    assert {row["repetition"] for row in figures["rows"]} == {1, 2}
    assert len(figures["started"]) == 2 and not partial.exists()
    assert f"resumed {figures['started'][1]}" in (tmp_path / "peers_reuters_150.md").read_text()


def test_a_resumed_peers_run_tries_a_failed_peer_again(tmp_path: Path) -> None:
    """Chroma's first pass on 100,000 Reuters sentences outran the harness's flat hour and was
    kept as failed, so every resumed run skipped it for good: resumed, a failed peer runs again
    (the run that saw it fail does not run it again), the kept passes stay done."""
    from bench.peers_passes import Passes

    path = tmp_path / "peers_reuters_100000.partial.json"
    identity = {"corpus": "reuters", "documents": 100_000, "repeats": 3}
    run = Passes.begin(path, identity, resume=False)
    run.add([{"repetition": 1, "run": "ours", "query_ms_p50": 6.8}])
    run.failures["chroma"] = "chroma failed: timed out after 3600 s"
    resumed = Passes.begin(path, identity, resume=True)
    assert resumed.done(1, "ours") and not resumed.done(1, "chroma")
    assert resumed.failures == {}
    assert resumed.rows == run.rows


def test_a_peers_header_names_the_order_the_passes_really_ran() -> None:
    """Chroma's first pass on 100,000 Reuters sentences failed and ran again on resume, after
    Qdrant Edge's first: the header still said "interleaved (ours, txtai, lancedb, qdrant,
    qdrant-edge, chroma, then again)" while the later repetitions ran Chroma second."""
    from bench.peers_report import header

    def figures(ran: list[tuple[int, str]]) -> dict[str, object]:
        rows = [{"repetition": rep, "run": run, "load_average_start": [1.0]} for rep, run in ran]
        return {"corpus_description": "c", "model": "m", "chunk": 1, "repeats": 2,
                "cores": 2, "finished": "f", "peak_rss": "VmHWM", "smoke": False,
                "rows": rows}  # fmt: skip

    plain = [(1, "ours"), (1, "chroma"), (1, "qdrant"), (2, "ours"), (2, "chroma"), (2, "qdrant")]
    assert "interleaved (ours, chroma, qdrant, then again)" in header(figures(plain))
    retried = [(1, "ours"), (1, "qdrant"), (1, "chroma"), (2, "ours"), (2, "chroma")]
    text = header(figures(retried))
    assert "then again" not in text
    assert "in this order: ours 1, qdrant 1, chroma 1, ours 2, chroma 2," in text


def test_a_peers_pass_on_100000_sentences_may_outlast_an_hour() -> None:
    """Each system's pass had a flat hour: Chroma's own function needed more on 100,000 Reuters
    sentences on one host (it encodes every sentence padded to 256 tokens), so its pass failed.
    The deadline grows with the corpus, down to 5 documents/s, and stays an hour for SciFact."""
    from bench.peers_data import Bench

    def bench(documents: int) -> Bench:
        ids = [str(i) for i in range(documents)]
        return Bench("reuters", ids, ids, [], [], smoke=False, model="m", model_name="m")

    assert bench(100_000).deadline_seconds >= 100_000 / 5 > 3600
    assert bench(5_183).deadline_seconds == 3600


def test_every_benchmark_encodes_at_the_servers_batch_size() -> None:
    """bench's `--batch-size` defaulted to 64 while the library, the server and every command in
    the READMEs use 32: `bench encoders` without the flag measured another batch than served."""
    from service.config import ServerSettings

    served = ServerSettings.model_fields["batch_size"].default
    for name in ("encoders", "quality", "compression", "speed", "peers"):
        assert build_parser().parse_args([name]).batch_size == served, name


def test_a_peer_without_its_environment_is_skipped_with_the_setup_command(tmp_path: Path) -> None:
    from bench.peers import PEERS

    peer = PEERS[0]
    assert "has no virtual environment" in peer.missing(tmp_path)
    assert "python -m bench peers --setup" in peer.missing(tmp_path)
    python = peer.python(tmp_path)
    python.parent.mkdir(parents=True)
    python.write_text("")
    (peer.home(tmp_path) / ".installed").write_text("torch==1.0\n")
    assert "other versions" in peer.missing(tmp_path)
    (peer.home(tmp_path) / ".installed").write_text(peer.stamp())
    assert peer.missing(tmp_path) is None


@pytest.mark.data
@pytest.mark.slow
def test_speed_smoke_measures_the_real_server(tmp_path: Path, data_dir: Path) -> None:
    """`python -m bench speed --smoke --compare-batching`: two server starts over one data dir."""
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")
    argv = ["speed", "--smoke", "--quiet", "--compare-batching", "--query-batch-ms", "2"]
    assert main([*argv, "--out", str(tmp_path), "--data", str(data_dir)]) == 0
    figures = json.loads((tmp_path / "speed_100.json").read_text(encoding="utf-8"))
    assert figures["smoke"] and figures["size"] == 100 and figures["query_batch_ms"] == 2
    assert figures["ingest"]["documents"] == figures["bare"]["texts"] == 100
    assert figures["ingest"]["docs_per_second"] > 0 and figures["ingest"]["job"]["fitted"]
    assert [run["batching"] for run in figures["runs"]] == ["2 ms", "off"]
    for run in figures["runs"]:
        assert [level["clients"] for level in run["concurrent"]] == [1, 4, 16]
        assert all(level["queries"] > 0 and level["errors"] == 0 for level in run["concurrent"])
        assert run["single"]["wall_ms"]["n"] == 5 and run["peak_rss_bytes"] > 100 * 2**20
    assert figures["batch"]["batch"] == 32
    info = figures["collection"]
    assert info["count"] == 100 and info["index_bytes_per_vector"] < info["raw_bytes_per_vector"]
    rows = figures["report"]["rows"]
    assert {(r["k"], r["index_spec"], r["rescore"]) for r in rows} == {
        (k, spec, on) for k in (384, 128) for spec in ("Flat", "HNSW32", "SQ8") for on in (0, 1)
    }
    # k = d with β = γ = 0 is a rotation: exact search up to ties between duplicate sentences.
    exact = next(r for r in rows if (r["k"], r["index_spec"], r["rescore"]) == (384, "Flat", False))
    assert exact["recall_at_10"] >= 0.95
    assert figures["default_report"]["wall_seconds"] > 0
    assert set(figures["fit_split"]) == {"kernel_fit", "transform", "index_build"}
    table = (tmp_path / "speed.md").read_text(encoding="utf-8")
    assert "SMOKE RUN" in table and "q/s, first ÷ second" in table and "HNSW32" in table


def test_speed_passes_only_the_settings_it_is_given() -> None:
    """Backend and query batching reach the server only when asked for, so the benchmark also
    runs against servers that do not know those settings yet."""
    from bench.speed import batching_configs, server_settings

    args = build_parser().parse_args(["speed"])
    assert {"backend", "query_batch_ms"}.isdisjoint(server_settings(args, None))
    args = build_parser().parse_args(["speed", "--backend", "onnx", "--compare-batching"])
    assert server_settings(args, 0.0)["backend"] == "onnx"
    assert server_settings(args, 0.0)["query_batch_ms"] == 0.0
    assert batching_configs(args) == [None, 0.0]
    args = build_parser().parse_args(["speed", "--query-batch-ms", "0", "--compare-batching"])
    assert batching_configs(args) == [0.0]


@pytest.mark.data
@pytest.mark.slow
def test_encoders_smoke_compares_backends_in_one_run(tmp_path: Path, data_dir: Path) -> None:
    """`python -m bench encoders --smoke`: each backend's speed on sentences and abstracts, its
    STS-B and SciFact quality, and agreement with the first."""
    _require(data_dir)
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")
    argv = ["encoders", "--smoke", "--quiet", "--backends", "onnx", "openvino", "onnx-int8"]
    assert main([*argv, "--out", str(tmp_path), "--data", str(data_dir)]) == 0
    rows = json.loads((tmp_path / "encoders.json").read_text(encoding="utf-8"))["rows"]
    assert [r["backend"] for r in rows] == ["onnx", "openvino", "onnx-int8"]
    assert rows[1]["cosine_to_first_min"] > 0.99999  # the same export, another runtime
    assert 0.95 < rows[2]["cosine_to_first_min"] < 0.9999
    for row in rows:
        assert min(row["sentences"]) > 0 and min(row["abstracts"]) > 0
        assert min(row["p50_ms"]) > 0 and min(row["p50_ms"]) <= max(row["p95_ms"])
        assert min(row["paused_p50_ms"]) > 0
        assert 50 < row["stsb_spearman"] <= 100 and 0 < row["scifact_ndcg"] <= 100
    assert "| onnx-int8 |" in (tmp_path / "encoders.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_load_smoke_runs_queries_during_ingest_without_errors(tmp_path: Path) -> None:
    assert main(["load", "--smoke", "--quiet", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    assert figures["smoke"] and figures["errors"] == 0 and figures["queries"] > 10
    assert figures["documents_ingested"] > 0 and figures["count_end"] > figures["count_start"]
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert figures["rss_start_mib"] > 50 and figures["rss_end_mib"] > 50
    assert "| errors | 0 |" in (tmp_path / "load.md").read_text(encoding="utf-8")


@pytest.mark.data
@pytest.mark.slow
def test_compression_smoke_writes_every_table_and_recall_agrees(
    tmp_path: Path, data_dir: Path
) -> None:
    """`python -m bench compression --smoke`: SciFact, STS-B and the Reuters report, whose
    recall@10 column an independent exact search reproduces."""
    _require(data_dir)
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")
    argv = ["compression", "--smoke", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--out", str(tmp_path), "--data", str(data_dir)]) == 0
    assert "| 64 | SQ8 | on |" in (tmp_path / "compression_scifact.md").read_text(encoding="utf-8")
    assert (tmp_path / "compression_scifact.png").read_bytes().startswith(PNG_MAGIC)
    assert "| 32 |" in (tmp_path / "compression_stsb.md").read_text(encoding="utf-8")
    text = (tmp_path / "compression_reuters.md").read_text(encoding="utf-8")
    checks = [line.split("|")[1:5] for line in text.splitlines() if line.count("|") == 5]
    checks = [(k, spec, float(a), float(b)) for k, spec, a, b in checks[2:]]
    assert {(k.strip(), spec.strip()) for k, spec, _, _ in checks} >= {
        ("384", "Flat"),
        ("64", "SQ8"),
    }
    assert all(abs(a - b) <= 0.5 for _, _, a, b in checks), checks


@pytest.mark.data
@pytest.mark.slow
def test_tuned_smoke_serves_what_the_tuner_reported(tmp_path: Path, data_dir: Path) -> None:
    """`python -m bench tuned --smoke`: tune over HTTP with explicit validation examples, apply,
    and the collection's answers to those examples score what the tuner reported for them."""
    _require(data_dir)
    assert (
        main(["tuned", "--smoke", "--quiet", "--out", str(tmp_path), "--data", str(data_dir)]) == 0
    )
    figures = json.loads((tmp_path / "served_tuning.json").read_text(encoding="utf-8"))
    for task in ("scifact", "stsb"):
        point = figures[task]["validation"]
        assert point["served_test"] == pytest.approx(point["held_out"], abs=0.01)
    scifact = figures["scifact"]["validation"]
    assert scifact["described_bytes_per_vector"] == pytest.approx(scifact["bytes_per_vector"])
    assert "| SciFact | nDCG@10 |" in (tmp_path / "served_tuning.md").read_text(encoding="utf-8")


@pytest.mark.data
@pytest.mark.slow
def test_cluster_smoke_answers_through_shards_as_one_collection(
    tmp_path: Path, data_dir: Path
) -> None:
    """`python -m bench cluster --smoke`: one collection, 2 local shards, 1 and 2 on Ray Serve."""
    pytest.importorskip("ray", reason="the `distributed` extra (Ray) is not installed")
    if not (data_dir / "reuters" / "sentences.txt").is_file():
        pytest.skip(f"{data_dir / 'reuters' / 'sentences.txt'} not found: set WHITENED_TEST_DATA")
    argv = ["cluster", "--smoke", "--quiet", "--out", str(tmp_path), "--data", str(data_dir)]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    figures = json.loads((tmp_path / "cluster.json").read_text(encoding="utf-8"))
    assert {p["system"] for p in figures["passes"]} == {
        "single",
        "local-2",
        "serve-1",
        "serve-2",
        "actor-1",
        "actor-2",
    }
    assert all(0 < p["p50"] <= p["p95"] and p["qps"] > 0 for p in figures["passes"])
    sharded = ["local-2", "serve-1", "serve-2", "actor-1", "actor-2"]
    assert figures["same_top10_as_single"] == dict.fromkeys(sharded, 20)
    assert "2 shards on Ray Serve" in (tmp_path / "cluster.md").read_text(encoding="utf-8")


@pytest.mark.data
@pytest.mark.slow
def test_cluster_http_smoke_pairs_the_ray_application_with_the_single_node(
    tmp_path: Path, data_dir: Path
) -> None:
    """`python -m bench cluster-http --smoke`: the same SciFact subset through the single-node
    server and the Ray application (1 and 2 shards), same answers, paired latencies recorded."""
    pytest.importorskip("ray", reason="the `distributed` extra (Ray) is not installed")
    if not (data_dir / "scifact" / "corpus.jsonl").is_file():
        pytest.skip(f"{data_dir / 'scifact' / 'corpus.jsonl'} not found: set WHITENED_TEST_DATA")
    argv = ["cluster-http", "--smoke", "--quiet", "--out", str(tmp_path), "--data", str(data_dir)]
    assert main(argv) == 0
    figures = json.loads((tmp_path / "cluster_http.json").read_text(encoding="utf-8"))
    systems = {"single", "ray-1", "ray-2"}
    assert {p["system"] for p in figures["passes"]} == systems
    assert all(0 < p["p50"] <= p["p95"] and p["qps"] > 0 for p in figures["passes"])
    for name in ("ray-1", "ray-2"):
        wide = figures["same_as_single_wide"][name]
        assert wide["same_ids"] == figures["queries"] and wide["worse"] == 0, wide
        # on the defaults too: the shards share the SQ8 range and merge as one index would
        same = figures["same_as_single"][name]
        assert same["same_ids"] == figures["queries"] and same["max_score_difference"] < 1e-6
    queries = figures["queries"]
    assert all(len(ms) == queries for ms in figures["paired_ms"].values())
    for timing in figures["paired_server_ms"].values():
        assert len(timing["encode"]) == queries and min(timing["encode"]) > 0
    assert all(min(ms) > 0 for ms in figures["paired_health_ms"].values())
    assert "Ray application, 2 shards" in (tmp_path / "cluster_http.md").read_text(encoding="utf-8")


def test_suite_smoke_keeps_each_test_its_outcome_and_the_run_its_time(tmp_path: Path) -> None:
    """`python -m bench suite --smoke`: pytest in a child process with the recorder plugin; the
    result file holds every test of the file run, the table counts them and names the slowest."""
    assert main(["suite", "--smoke", "--quiet", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "suite.json").read_text(encoding="utf-8"))
    tests = figures["tests"]
    assert len(tests) > 20 and all(test["outcome"] == "passed" for test in tests)
    assert all(test["id"].startswith("tests/test_index_spec.py::") for test in tests)
    assert figures["exit_status"] == 0 and figures["seconds"] > sum(
        test["seconds"] for test in tests
    )
    table = (tmp_path / "suite.md").read_text(encoding="utf-8")
    assert f"**{len(tests)} passed in " in table and "SMOKE RUN" in table
