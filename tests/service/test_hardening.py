"""Issue 17's reproductions that need a restart, a real server or the CLI: a stored spec that
FAISS would crash on, collections that cannot be fitted yet, hidden folders beside the data,
readiness after a repair, and kernels refitted when an ingest outgrows them."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient
from service_support import ROOT, LiveServer, corpus, filler, wait_job, wait_ready

from service import ServerSettings, create_app


def app(data_dir: Path, **settings: object) -> TestClient:
    return TestClient(create_app(ServerSettings(data_dir=data_dir, **settings)))


def test_a_stored_spec_faiss_would_crash_on_makes_only_its_collection_unavailable(
    tmp_path: Path,
) -> None:
    """A manifest holding `HNSW1` (stored by an older version) crashed the process at every
    start; now that collection answers 503 with the reason and the others serve."""
    with app(tmp_path) as client:
        wait_ready(client)
        for name in ("seg", "good"):
            assert client.post("/collections", json={"name": name, "k": 16}).status_code == 201
            added = client.post(f"/collections/{name}/documents", json={"documents": corpus()})
            assert added.json()["fitted"]
    manifest = tmp_path / "seg" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["settings"]["index_spec"] = "HNSW1"
    manifest.write_text(json.dumps(data))
    with app(tmp_path) as client:
        ready = wait_ready(client)
        assert ready["status"] == "degraded" and list(ready["unavailable"]) == ["seg"]
        assert "M must be between 4 and 64" in ready["unavailable"]["seg"]
        query = client.post("/collections/seg/query", json={"text": "a guitar"})
        assert query.status_code == 503 and "HNSW1" in query.json()["detail"]
        good = client.post("/collections/good/query", json={"text": "a guitar", "top_k": 1})
        assert good.status_code == 200
        assert good.json()["results"][0]["hits"][0]["id"].startswith("music")
        assert client.delete("/collections/seg").status_code == 204
        assert client.get("/ready").status_code == 200  # recomputed after the delete


def test_collections_that_cannot_be_fitted_yet_survive_a_restart(tmp_path: Path) -> None:
    """β=γ=1 with 10 documents, and the README's IVF256,PQ16 with 50, loaded with fit=false:
    after a restart every route of them answered 422 and /ready stayed 503."""
    cases = {
        "whitened": ({"beta": 1, "gamma": 1}, corpus()[:10], "exceeds the"),
        "ivfpq": ({"index_spec": "IVF256,PQ16"}, filler(50), "at least 256 vectors"),
    }
    with app(tmp_path) as client:
        wait_ready(client)
        for name, (settings, docs, _) in cases.items():
            assert client.post("/collections", json={"name": name, **settings}).status_code == 201
            body = {"documents": docs, "fit": False}
            assert client.post(f"/collections/{name}/documents", json=body).status_code == 201
    with app(tmp_path) as client:
        assert wait_ready(client)["status"] == "ready"
        for name, (_, docs, reason) in cases.items():
            info = client.get(f"/collections/{name}").json()
            assert not info["fitted"] and reason in info["fit_error"], info
            assert info["count"] == len(docs)
            query = client.post(f"/collections/{name}/query", json={"text": "a guitar"})
            assert query.status_code == 409 and reason in query.json()["detail"]
            assert client.get(f"/collections/{name}/documents/{docs[0]['id']}").status_code == 200
            more = {"documents": [{"id": f"{name}-more", "text": "A new document."}]}
            added = client.post(f"/collections/{name}/documents", json=more).json()
            assert not added["fitted"] and reason in added["fit_error"]
            fit = {"beta": 0, "gamma": 0, "k": 16, "index_spec": "Flat"}
            refit = client.post(f"/collections/{name}/fit", json=fit)
            assert refit.status_code == 200, refit.text
            assert refit.json()["collection"]["fitted_on"] == len(docs) + 1
            hits = client.post(f"/collections/{name}/query", json={"text": "a guitar"})
            assert hits.status_code == 200 and hits.json()["results"][0]["hits"]


def test_an_ingest_job_that_outgrows_the_kernel_refits_it(tmp_path: Path) -> None:
    """A kernel fitted on the first chunks of an interrupted first ingest was never refitted."""
    with app(tmp_path, ingest_chunk=25) as client:
        wait_ready(client)
        client.post("/collections", json={"name": "grow", "k": 32})
        first = client.post("/collections/grow/documents", json={"documents": filler(20)})
        assert first.json()["fitted"]
        assert client.get("/collections/grow").json()["fitted_on"] == 20
        small = {"documents": filler(10, prefix="small")}  # 30 < 2 x 20: kept
        job = wait_job(
            client, client.post("/collections/grow/ingest", json=small).json()["job"]["id"]
        )
        assert job["state"] == "done" and not job["fitted"]
        assert client.get("/collections/grow").json()["fitted_on"] == 20
        large = {"documents": filler(60, prefix="large")}  # 90 >= 2 x 20: refitted
        job = wait_job(
            client, client.post("/collections/grow/ingest", json=large).json()["job"]["id"]
        )
        assert job["state"] == "done" and job["fitted"]
        info = client.get("/collections/grow").json()
        assert info["fitted_on"] == info["count"] == 90 and not info["refit_due"]


def test_serve_beside_hidden_folders_leaves_them_alone_and_the_cli_refits(tmp_path: Path) -> None:
    """`serve --data-dir .` in a repository deleted .git and .ssh; and a CLI ingest that ends
    with twice the documents the kernel saw refits it."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    server = LiveServer(tmp_path, tmp_path.parent / f"{tmp_path.name}.log").start()
    try:
        with server.client() as client:
            client.post("/collections", json={"name": "cli", "k": 32})
            client.post("/collections/cli/documents", json={"documents": filler(20)})
        source = tmp_path.parent / "more.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in filler(60, prefix="more")))
        ingest = [sys.executable, "-m", "service.cli", "ingest", str(source), "--collection"]
        done = subprocess.run(
            [*ingest, "cli", "--url", server.url, "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        with server.client() as client:
            info = client.get("/collections/cli").json()
        assert info["count"] == info["fitted_on"] == 80
    finally:
        server.close()
    assert (tmp_path / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (tmp_path / ".ssh" / "config").read_text() == "Host *\n"
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert set(before) <= after


def test_documents_with_empty_text_are_stored_and_a_query_still_needs_text(
    tmp_path: Path,
) -> None:
    """Issue 17 item 9: Cranfield's two empty abstracts failed the whole ingest."""
    with app(tmp_path) as client:
        wait_ready(client)
        client.post("/collections", json={"name": "cran", "k": 16})
        docs = [*corpus()[:10], {"id": "empty", "text": ""}]
        job = client.post("/collections/cran/ingest", json={"documents": docs}).json()["job"]
        assert wait_job(client, job["id"])["state"] == "done"
        assert client.get("/collections/cran/documents/empty").json()["text"] == ""
        info = client.get("/collections/cran").json()
        assert info["count"] == info["indexed"] == 11
        blank = client.post("/collections/cran/query", json={"text": "  "})
        assert blank.status_code == 422 and "empty" in blank.json()["detail"]


def test_errors_clients_read_hold_no_absolute_server_path(tmp_path: Path) -> None:
    """Issue 17 item 12: a job's error (and a broken collection's reason) showed the server's
    absolute path to any client; /ready is open even when a key is set."""
    with app(tmp_path) as client:
        wait_ready(client)
        client.post("/collections", json={"name": "doomed", "k": 16})
        job = client.post("/collections/doomed/ingest", json={"documents": filler(300)})
        assert client.delete("/collections/doomed").status_code == 204
        failed = wait_job(client, job.json()["job"]["id"])
        assert failed["state"] == "failed" and "closed or deleted" in failed["error"]
        client.post("/collections", json={"name": "broken", "k": 16})
        client.post("/collections/broken/documents", json={"documents": corpus()})
    (tmp_path / "broken" / "manifest.json").write_text("{ not json")
    with app(tmp_path) as client:
        ready = wait_ready(client)
        answers = [
            json.dumps(failed),
            json.dumps(ready),
            client.get("/collections").text,
            client.get("/collections/broken").text,
        ]
    assert "broken/manifest.json" in ready["unavailable"]["broken"]
    for answer in answers:
        assert str(tmp_path) not in answer, answer


def test_an_interrupted_cli_ingest_resumes_with_upsert_without_duplicates(tmp_path: Path) -> None:
    """Issue 17 item 7: .txt lines got server-made ids, so the documented resume (re-run with
    --upsert) stored every document sent before the kill a second time (728 of 600)."""
    source = tmp_path / "lines.txt"
    source.write_text("".join(f"{d['text']}\n" for d in filler(600, prefix="line")))
    server = LiveServer(tmp_path / "data", tmp_path / "server.log").start()
    command = [sys.executable, "-m", "service.cli", "ingest", str(source), "-c", "lines"]
    command += ["--url", server.url, "--batch", "32", "--quiet"]
    try:
        with server.client() as client:
            client.post("/collections", json={"name": "lines", "k": 16})
            first = subprocess.Popen([*command], cwd=ROOT, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while client.get("/collections/lines").json()["count"] < 96:
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.05)
            first.kill()
            first.wait()
            stored = client.get("/collections/lines").json()["count"]
            assert 96 <= stored < 600
            again = subprocess.run(
                [*command, "--upsert"], cwd=ROOT, capture_output=True, timeout=300
            )
            assert again.returncode == 0, again.stderr
            info = client.get("/collections/lines").json()
            page = client.get("/collections/lines/documents", params={"limit": 1000}).json()
    finally:
        server.close()
    assert info["count"] == 600 and info["fitted"]
    assert sorted(d["id"] for d in page["documents"]) == sorted(
        f"lines.txt:{n}" for n in range(1, 601)
    )


def test_half_sent_requests_are_cut_off_and_the_server_still_answers(tmp_path: Path) -> None:
    """Issue 17 item 6: 1,000 connections that sent half a request were held for minutes."""
    timeout = 2.0
    server = LiveServer(tmp_path / "data", tmp_path / "log", read_timeout=timeout).start()
    sockets: list[socket.socket] = []
    try:
        for n in range(200):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" if n % 2 else b"GE")
            sockets.append(s)
        stalled_body = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        stalled_body.sendall(
            b"POST /similarity HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"pairs": '
        )
        started = time.monotonic()
        closed = 0
        for s in sockets:  # each is closed by the server: recv returns b"" (or a reset)
            try:
                closed += s.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
        waited = time.monotonic() - started
        answer = b""
        while chunk := stalled_body.recv(65536):  # the head and the body may come apart
            answer += chunk
        with server.client() as client:
            assert client.get("/health").status_code == 200
    finally:
        for s in sockets:
            s.close()
        server.close()
    assert closed == len(sockets) and waited < 6 * timeout, (closed, waited)
    assert answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
