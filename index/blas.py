"""The process's BLAS (numpy's OpenBLAS) on one thread, set once by the first kernel call.

Every matrix product the library runs per query is small: a query or a few hundred candidates
through a d × d kernel. Two BLAS threads then mostly wait for each other, and on a busy machine
for a core. Measured here at load average 9–10 (three interleaved runs, 50 SciFact queries
each through `Collection.answer` on 200 abstracts): 0.9–2.2 ms a query (k=128, SQ8, kernel
re-scoring) with one BLAS thread, 11–45 ms with OpenBLAS's default of one per core. Bulk work
(a fit's Σxᵀx, a rebuild's transform) loses less than a second at 100,000 documents. BLAS's
thread count is process-wide (unlike OpenMP's, see `index.vector_index.FAISS_THREADS`), so
setting it once holds.
"""

from threadpoolctl import threadpool_limits

BLAS_THREADS = 1
_pinned = False


def pin_threads() -> None:
    """Limit BLAS to BLAS_THREADS threads for the process (a no-op after the first call)."""
    global _pinned
    if not _pinned:
        threadpool_limits(BLAS_THREADS, user_api="blas")
        _pinned = True
