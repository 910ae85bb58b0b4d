#!/usr/bin/env bash
# Two Ray "nodes" on this machine (a head and a worker of 1 CPU each), the CLI's `ingest --ray`
# of the first N Reuters sentences on them, and the single-node CLI ingest of the same file
# through a server; then both collections are queried with the next 200 sentences and compared.
# Writes bench/results/two_nodes.json (rendered into docs/SCALING.md).
# Usage: bash scripts/two_nodes.sh [N] (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/two-nodes-XXXXXX)
PORT=$(.venv/bin/python -c "from bench.live import free_port; print(free_port())")
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$WORK/token  # both nodes share one token
cleanup() { .venv/bin/ray stop --force >/dev/null 2>&1 || true; [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
.venv/bin/python - "$WORK" "$N" <<'PY'
import secrets, sys
from bench import data
work, n = sys.argv[1], int(sys.argv[2])
sentences = [s.replace("\n", " ") for s in data.load_reuters_sentences(None, n + 200)]
open(f"{work}/s.txt", "w").write("\n".join(sentences[:n]) + "\n")
open(f"{work}/q.txt", "w").write("\n".join(sentences[n:]) + "\n")
open(f"{work}/token", "w").write(secrets.token_hex(32))
PY
.venv/bin/ray start --head --port 6380 --num-cpus 1 --include-dashboard=false >"$WORK/head.log" 2>&1
.venv/bin/ray start --address 127.0.0.1:6380 --num-cpus 1 >"$WORK/worker.log" 2>&1
NODES=$(.venv/bin/python -c "import ray; ray.init(address='127.0.0.1:6380', log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))" 2>/dev/null)
start=$(date +%s.%N)
(cd "$WORK" && "$ROOT/.venv/bin/whitened-search" ingest s.txt -c news --create --ray 127.0.0.1:6380 \
    --actors 2 --data-dir "$WORK/ray-data" --encoded "$WORK/news.encoded" >"$WORK/ray-ingest.log" 2>&1)
RAY_SECONDS=$(.venv/bin/python -c "import time; print(f'{time.time() - $start:.1f}')")
.venv/bin/ray stop >/dev/null 2>&1
WHITENED_SEARCH_DATA_DIR=$WORK/single-data WHITENED_SEARCH_PORT=$PORT .venv/bin/whitened-search serve >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 120); do curl -sf "127.0.0.1:$PORT/ready" >/dev/null && break; sleep 1; done
start=$(date +%s.%N)
.venv/bin/whitened-search ingest "$WORK/s.txt" -c news --create --url "http://127.0.0.1:$PORT" --quiet
SINGLE_SECONDS=$(.venv/bin/python -c "import time; print(f'{time.time() - $start:.1f}')")
kill "$SERVER"; wait "$SERVER" || true; SERVER=
.venv/bin/python - "$WORK" "$N" "$NODES" "$RAY_SECONDS" "$SINGLE_SECONDS" <<'PY'
import os, sys
from bench import distributed_report, report
from index import Catalog
work, n, nodes, ray_seconds, single_seconds = sys.argv[1:6]
single, ray = Catalog(f"{work}/single-data").get("news"), Catalog(f"{work}/ray-data").get("news")
queries = [t for t in open(f"{work}/q.txt").read().split("\n") if t.strip()]
vectors = single.require_encoder().encode(queries)
a, b = single.answer(vectors, 10).hits, ray.answer(vectors, 10).hits
same_order = sum([h.id for h in x] == [h.id for h in y] for x, y in zip(a, b, strict=True))
same_set = sum({h.id for h in x} == {h.id for h in y} for x, y in zip(a, b, strict=True))
gap = max(abs(h.score - g.score) for x, y in zip(a, b, strict=True) for h, g in zip(x, y))
same_rows = [d.id for d in single.documents(0, 10**7)] == [d.id for d in ray.documents(0, 10**7)]
figures = {
    "documents": int(n),
    "nodes": int(nodes),
    "queries": len(queries),
    "counts": {"ray": ray.count(), "single": single.count()},
    "seconds": {"ray": float(ray_seconds), "single": float(single_seconds)},
    "same_row_order": same_rows,
    "same_top10_order": same_order,
    "same_top10_set": same_set,
    "largest_score_difference": gap,
    "load_average_end": os.getloadavg(),
}
report.write_json(report.RESULTS_DIR / "two_nodes.json", figures)
print(distributed_report.two_nodes(figures))
PY
