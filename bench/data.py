"""Loaders for the evaluation data beside the project: STS-B, SciFact (BEIR) and Reuters.

The data lives in ../shared/data relative to the repository root, or wherever the environment
variable WHITENED_TEST_DATA points. A missing file raises DataMissing, which says where it looked.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "WHITENED_TEST_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

STSB_SPLITS = ("train", "dev", "test")


class DataMissing(FileNotFoundError):
    """An evaluation file is not where the benchmark looked for it."""


def data_dir() -> Path:
    """The data folder: $WHITENED_TEST_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataMissing(
            f"{path} not found: put the evaluation data in {DEFAULT_DATA_DIR} "
            f"or set {ENV_VAR} to the folder that holds stsb/, scifact/ and reuters/"
        )
    return path


def _root(root: str | os.PathLike[str] | None) -> Path:
    return data_dir() if root is None else Path(root)


# ---- STS-B ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairSplit:
    """Labelled pairs of one split: gold scores (0–5) and rows into `Stsb.sentences`."""

    gold: np.ndarray
    first: np.ndarray
    second: np.ndarray

    def __len__(self) -> int:
        return len(self.gold)


@dataclass(frozen=True)
class Stsb:
    """STS-B: each unique sentence once (exact string, first appearance order) and the splits."""

    sentences: list[str]
    splits: dict[str, PairSplit]


def read_stsb_split(path: str | os.PathLike[str]) -> list[tuple[float, str, str]]:
    """Rows (score, sentence1, sentence2): fields 4, 5, 6 split on tabs (some rows have 9)."""
    rows = []
    for line in _require(Path(path)).read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        rows.append((float(fields[4]), fields[5], fields[6]))
    return rows


def load_stsb(root: str | os.PathLike[str] | None = None, limit: int | None = None) -> Stsb:
    """The train, dev and test pairs; `limit` keeps the first that many pairs of each split.

    Sentences are deduplicated by exact string, without stripping: 15,487 unique over the three
    splits, the set the reference kernel was fitted on (../shared/data/README.md).
    """
    folder = _root(root) / "stsb"
    rows = {split: read_stsb_split(folder / f"sts-{split}.csv") for split in STSB_SPLITS}
    if limit is not None:
        rows = {split: split_rows[:limit] for split, split_rows in rows.items()}
    position: dict[str, int] = {}
    for split_rows in rows.values():
        for _, first, second in split_rows:
            position.setdefault(first, len(position))
            position.setdefault(second, len(position))
    splits = {
        split: PairSplit(
            gold=np.array([row[0] for row in split_rows], dtype=np.float64),
            first=np.array([position[row[1]] for row in split_rows], dtype=np.int64),
            second=np.array([position[row[2]] for row in split_rows], dtype=np.int64),
        )
        for split, split_rows in rows.items()
    }
    return Stsb(sentences=list(position), splits=splits)


# ---- SciFact (BEIR layout) --------------------------------------------------------------------


@dataclass(frozen=True)
class Beir:
    """A BEIR dataset: documents (title + " " + text), queries, and qrels per split."""

    doc_ids: list[str]
    documents: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, dict[str, int]]]
    """split -> query id -> document id -> grade."""

    def judged(self, split: str) -> tuple[np.ndarray, list[dict[str, int]]]:
        """Rows into `queries` of the split's judged queries and their judgments, in qrels order."""
        row = {qid: i for i, qid in enumerate(self.query_ids)}
        judged = {
            qid: grades
            for qid, grades in self.qrels[split].items()
            if any(g > 0 for g in grades.values())
        }
        unknown = [qid for qid in judged if qid not in row]
        if unknown:
            raise DataMissing(
                f"qrels/{split}.tsv names queries not in queries.jsonl: {unknown[:5]}"
            )
        return np.array([row[qid] for qid in judged], dtype=np.int64), list(judged.values())


def _read_jsonl(path: Path) -> list[dict]:
    with _require(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """query id -> document id -> grade, from a BEIR qrels TSV with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    lines = _require(Path(path)).read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        query_id, doc_id, grade = line.split("\t")[:3]
        qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return qrels


def load_scifact(
    root: str | os.PathLike[str] | None = None,
    limit_docs: int | None = None,
    splits: tuple[str, ...] = ("train", "test"),
) -> Beir:
    """SciFact: 5,183 abstracts, 1,109 claims, qrels for train (809 queries) and test (300).

    `limit_docs` keeps a small, still meaningful subset (for smoke runs): the relevant documents
    of the first queries of each split, topped up with other documents in corpus order; only the
    queries whose judged documents are all kept remain, with only the queries of `splits`.
    """
    folder = _root(root) / "scifact"
    corpus = _read_jsonl(folder / "corpus.jsonl")
    query_rows = _read_jsonl(folder / "queries.jsonl")
    qrels = {split: read_qrels(folder / "qrels" / f"{split}.tsv") for split in splits}
    doc_ids = [str(row["_id"]) for row in corpus]
    documents = [f"{row.get('title') or ''} {row.get('text') or ''}" for row in corpus]
    if limit_docs is not None:
        keep = _subset(doc_ids, qrels, limit_docs)
        qrels = {
            split: {q: g for q, g in judged.items() if set(g) <= keep}
            for split, judged in qrels.items()
        }
        chosen = [i for i, doc in enumerate(doc_ids) if doc in keep]
        doc_ids = [doc_ids[i] for i in chosen]
        documents = [documents[i] for i in chosen]
        wanted = {q for judged in qrels.values() for q in judged}
        query_rows = [row for row in query_rows if str(row["_id"]) in wanted]
    return Beir(
        doc_ids=doc_ids,
        documents=documents,
        query_ids=[str(row["_id"]) for row in query_rows],
        queries=[str(row["text"]) for row in query_rows],
        qrels=qrels,
    )


def _subset(doc_ids: list[str], qrels: dict[str, dict[str, dict[str, int]]], n: int) -> set[str]:
    """About a third of `n` for each split's judged documents, the rest other documents."""
    known = set(doc_ids)
    keep: set[str] = set()
    share = max(1, n // (len(qrels) + 1))
    for judged in qrels.values():
        budget = len(keep) + share
        for grades in judged.values():
            docs = set(grades)
            if not docs <= known or len(keep | docs) > budget:
                continue
            keep |= docs
    for doc in doc_ids:
        if len(keep) >= n:
            break
        keep.add(doc)
    return keep


# ---- Reuters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReutersDoc:
    id: str
    title: str
    text: str
    split: str
    topics: list[str]


def load_reuters_sentences(
    root: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[str]:
    """The 107,611 Reuters sentences in file order (102,244 unique); the first `limit` of them."""
    path = _require(_root(root) / "reuters" / "sentences.txt")
    sentences: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(sentences) >= limit:
                break
            text = line.rstrip("\n")
            if text.strip():
                sentences.append(text)
    return sentences


def load_reuters_docs(
    root: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[ReutersDoc]:
    """The 19,043 Reuters-21578 articles with a body; the first `limit` of them."""
    rows = _read_jsonl(_root(root) / "reuters" / "docs.jsonl")[:limit]
    return [
        ReutersDoc(
            id=str(row["_id"]),
            title=row.get("title") or "",
            text=row.get("text") or "",
            split=row.get("lewissplit") or "",
            topics=list(row.get("topics") or []),
        )
        for row in rows
    ]
