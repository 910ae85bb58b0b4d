"""The FAISS index specs a collection may use: a small grammar, bounded parameters, a memory bound.

FAISS's `index_factory` parses far more than it can run safely: `HNSW1` segfaults on the first
add, `PQ16x0` divides by zero, `NSG0` never finishes training, `PQ128x24` asks for gigabytes of
codebook. A spec written by a client is stored in the manifest and used again at every start, so
one bad spec would crash the process at each restart. Every spec is therefore parsed here, its
parameters checked against bounds that FAISS handles, and its memory estimated, before any FAISS
call (create, fit, open).

    spec   := "Flat" | sq | pq | ["RR,"] "PQ" m "x4fs" | "RR," pq | "RaBitQ" | hnsw | ivf
              | "BFlat" | "BHNSW" M
    sq     := "SQ4" | "SQ6" | "SQ8" | "SQfp16"
    pq     := "PQ" m ["x" nbits]                m divides the dimension, 1 ≤ nbits ≤ 8
    hnsw   := "HNSW" M ["," ("Flat" | sq)]      4 ≤ M ≤ 64
    ivf    := "IVF" nlist "," ("Flat" | sq | pq | "RaBitQ")      1 ≤ nlist ≤ 16384

"x4fs" is FAISS's fast scan: 4-bit codes scored 32 vectors at a time with SIMD lookups, about
ten times faster per candidate list than 8-bit PQ here, so a few thousand candidates cost a
fraction of a millisecond. It takes no FAISS filter: where deletions and a query's filter leave
out at most EXACT_FILTER_LIMIT codes the query asks for that many more hits and drops them;
otherwise it scores the allowed codes one by one (cheap for a filter that allows few).
"RR," rotates the vectors at random (a fixed seed, a k × k matrix) before PQ codes them: the
kernel orders its components by variance, so plain PQ spends its first sub-quantizers on a few
strong coordinates and its last ones on weak ones; after the rotation each gets an even share.
On 100,000 Reuters sentences at k=112 (plain FAISS, raw re-scoring) PQ14 kept 98.75 % of the
exact top 10 among 1,600 candidates and RR,PQ14 99.70 %; bench/results/served_bytes_reuters.json
has what a collection serves.
"""

import math
import re
from dataclasses import dataclass, replace

from index.errors import InvalidIndexSpec, NotEnoughData

MAX_INDEX_BYTES = 8 * 2**30
"""Largest estimated index memory (codebooks, centroids, codes and ids) a collection may need."""

HNSW_M = (4, 64)
"""Neighbours per HNSW node: below 4 FAISS crashes or the graph falls apart, above 64 a node
costs more memory than the float vector it indexes."""

IVF_NLIST = (1, 16384)
"""Inverted lists: training costs about nlist² · 256 · k operations, minutes beyond 16384."""

PQ_NBITS = (1, 8)
"""Bits per PQ sub-quantizer: a codebook of 2^nbits entries; 0 divides by zero in FAISS and
more than 8 makes the codebook and its training grow by 2^nbits."""

IVF_ID_BYTES = 8
"""An inverted list keeps an int64 id beside each code (other indexes hold codes only: their
ids live in `index.id_map` as runs)."""

_SQ_BITS = {"SQ4": 4, "SQ6": 6, "SQ8": 8, "SQfp16": 16}
_SQ = "SQ4|SQ6|SQ8|SQfp16"


def _codec_pattern(prefix: str) -> str:
    """A flat code (Flat, SQ, PQ, RaBitQ) whose groups are named `prefix`codec, m, nbits."""
    return rf"(?P<{prefix}codec>Flat|{_SQ}|PQ(?P<{prefix}m>\d+)(?:x(?P<{prefix}nbits>\d+))?|RaBitQ)"


_GRAMMAR = re.compile(
    _codec_pattern("")
    + r"|(?:RR,)?PQ(?P<fs_m>\d+)x4fs"
    + r"|RR,PQ(?P<rr_m>\d+)(?:x(?P<rr_nbits>\d+))?"
    + rf"|HNSW(?P<hnsw>\d+)(?:,(?P<hnsw_codec>Flat|{_SQ}))?"
    + rf"|IVF(?P<nlist>\d+),{_codec_pattern('ivf_')}"
    + r"|BFlat|BHNSW(?P<bhnsw>\d+)"
)

SUPPORTED = (
    "'Flat', 'SQ4', 'SQ6', 'SQ8', 'SQfp16', 'PQ{m}', 'PQ{m}x{nbits}' or 'PQ{m}x4fs' (each "
    "optionally after 'RR,'), 'RaBitQ', 'HNSW{M}' "
    "(optionally ',SQ8' and the like), 'IVF{nlist},{Flat|SQ8|PQ{m}|RaBitQ}', 'BFlat', 'BHNSW{M}'"
)


@dataclass(frozen=True)
class IndexSpec:
    """A parsed spec for vectors of `dim` dimensions: what it costs and what it needs to train."""

    text: str
    dim: int
    binary: bool
    code_bytes: int
    """Bytes the index holds per vector: its code, with HNSW's graph links, IVF's list id."""
    fixed_bytes: int
    """Bytes that do not grow with the vectors: codebooks, centroids, quantizer ranges."""
    min_train: int
    """Vectors needed to train (0: no training)."""
    trained_by_range: bool = False
    """Training learns only each dimension's range (SQ codes): the range of several sets of
    vectors is that of their extremes, so shards that train on every shard's extremes code a
    vector as one index trained on them all would (`index.shards`)."""

    @property
    def trains_apart(self) -> bool:
        """Shards of a collection train indexes of this spec each on its own vectors (IVF
        lists, PQ codebooks: they do not merge), so their codes differ from shard to shard."""
        return self.min_train > 0 and not self.trained_by_range

    def estimated_bytes(self, n: int) -> int:
        """Memory of the index holding `n` vectors (codes and the fixed part)."""
        return self.fixed_bytes + n * self.code_bytes

    def check_fits(self, n: int, limit: int = MAX_INDEX_BYTES) -> None:
        """Refuse (InvalidIndexSpec) an index of `n` vectors estimated above `limit` bytes, and
        (NotEnoughData) one that needs more vectors to train than `n`."""
        needed = self.estimated_bytes(n)
        if needed > limit:
            raise InvalidIndexSpec(
                f"index spec {self.text!r} at dimension {self.dim} with {n} vectors needs about "
                f"{needed / 2**30:.1f} GiB, above the limit of {limit / 2**30:.1f} GiB: choose "
                "smaller parameters (fewer lists, fewer PQ bits) or a smaller k"
            )
        if 0 < n < self.min_train:
            raise NotEnoughData(
                f"index spec {self.text!r} needs at least {self.min_train} vectors to train, "
                f"the collection holds {n}: add more documents, or use a spec without training "
                "such as 'Flat', 'SQ8' or 'HNSW32'"
            )


def parse(spec: object, dim: int) -> IndexSpec:
    """The spec `spec` for `dim`-dimensional vectors, or InvalidIndexSpec saying what to write."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidIndexSpec(f"index spec must be a non-empty string, got {spec!r}")
    text = spec.strip()
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise InvalidIndexSpec(f"index spec {text!r} is not supported: use one of {SUPPORTED}")
    groups = match.groupdict()
    if text == "BFlat" or groups["bhnsw"] is not None:
        return _binary(text, dim, groups["bhnsw"])
    if groups["fs_m"] is not None or groups["rr_m"] is not None:
        fast_scan = groups["fs_m"] is not None
        m, nbits = (groups["fs_m"], "4") if fast_scan else (groups["rr_m"], groups["rr_nbits"])
        codec = _codec(text, dim, "PQ", m, nbits)
        if not text.startswith("RR,"):
            return codec
        return replace(codec, fixed_bytes=codec.fixed_bytes + 4 * dim * dim)
    if groups["hnsw"] is not None:
        m = _bounded(text, "M", groups["hnsw"], HNSW_M)
        codec = _codec(text, dim, groups["hnsw_codec"] or "Flat", None, None)
        return replace(codec, code_bytes=codec.code_bytes + _hnsw_link_bytes(m))
    if groups["nlist"] is not None:
        nlist = _bounded(text, "nlist", groups["nlist"], IVF_NLIST)
        codec = _codec(text, dim, groups["ivf_codec"], groups["ivf_m"], groups["ivf_nbits"])
        return replace(
            codec,
            code_bytes=codec.code_bytes + IVF_ID_BYTES,
            fixed_bytes=codec.fixed_bytes + 4 * nlist * dim,
            min_train=max(nlist, codec.min_train),
            trained_by_range=False,  # its lists are k-means centroids
        )
    return _codec(text, dim, groups["codec"], groups["m"], groups["nbits"])


def _codec(text: str, dim: int, codec: str, m: str | None, nbits: str | None) -> IndexSpec:
    """The flat part of a spec: how one vector is coded."""
    if codec == "Flat":
        return IndexSpec(text, dim, False, 4 * dim, 0, 0)
    if codec in _SQ_BITS:
        return IndexSpec(text, dim, False, math.ceil(_SQ_BITS[codec] * dim / 8), 8 * dim, 1, True)
    if codec == "RaBitQ":
        return IndexSpec(text, dim, False, math.ceil(dim / 8) + 8, 4 * dim, 1)
    subquantizers = _bounded(text, "m", m, (1, dim))
    bits = _bounded(text, "nbits", nbits or "8", PQ_NBITS)
    if dim % subquantizers:
        raise InvalidIndexSpec(
            f"index spec {text!r}: PQ{subquantizers} splits the vector into {subquantizers} "
            f"parts, which must divide k={dim}: use a divisor of {dim} such as "
            f"{_divisors_near(dim, subquantizers)}"
        )
    codebook = 4 * 2**bits * dim
    return IndexSpec(text, dim, False, math.ceil(subquantizers * bits / 8), codebook, 2**bits)


def _binary(text: str, dim: int, m: str | None) -> IndexSpec:
    if dim % 8:
        raise InvalidIndexSpec(
            f"binary spec {text!r} packs 8 dimensions a byte: use a k divisible by 8, not {dim}"
        )
    links = 0 if m is None else _hnsw_link_bytes(_bounded(text, "M", m, HNSW_M))
    return IndexSpec(text, dim, True, dim // 8 + links, 0, 0)


def _hnsw_link_bytes(m: int) -> int:
    """Neighbour lists of one HNSW node: 2·M int32 links on level 0, about M/(M−1) more above."""
    return 4 * (2 * m + math.ceil(m / max(m - 1, 1)) * m)


def _bounded(text: str, name: str, value: str | None, bounds: tuple[int, int]) -> int:
    low, high = bounds
    number = int(value) if value is not None and len(value) <= 9 else high + 1
    if not low <= number <= high:
        raise InvalidIndexSpec(
            f"index spec {text!r}: {name} must be between {low} and {high}, got {value}"
        )
    return number


def _divisors_near(dim: int, wanted: int) -> str:
    divisors = [d for d in range(1, dim + 1) if dim % d == 0]
    closest = sorted(divisors, key=lambda d: abs(d - wanted))[:3]
    return ", ".join(str(d) for d in sorted(closest))
