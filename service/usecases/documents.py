"""Write, ingest (as a background job), read and delete a collection's documents."""

from collections.abc import Sequence
from dataclasses import dataclass

from index import Conflict, Document, Encoder, InvalidInput, StoredDocument, WriteResult
from index.catalog import Stored
from index.documents import prepare
from service.jobs import Job, JobHandle
from service.usecases.context import Context


@dataclass(frozen=True)
class Written:
    """A synchronous write: the library's WriteResult plus what the service adds."""

    ids: list[str]
    result: WriteResult
    count: int
    fitted: bool
    fit_error: str | None


class Documents:
    """A collection's documents: synchronous writes, ingest jobs in committed chunks, reads."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def add(
        self, name: str, documents: Sequence[Document], upsert: bool = False, fit: bool = True
    ) -> Written:
        """Store a batch in one transaction; fit the kernel when the collection has none.

        The documents are committed before the fit: a fit that cannot happen yet (too few
        documents for k, say) is reported in `fit_error`, not as a failed write.
        """
        context = self._context
        context.check_count(len(documents), "documents")
        collection = context.catalog.get(name)
        fit = fit and name not in context.jobs.active_collections()  # the job fits at its end
        result = collection.add(documents, upsert=upsert, fit=fit)
        context.telemetry.observe_encode("documents", result.encode_seconds, len(documents))
        return Written(
            ids=list(result.ids),
            result=result,
            count=collection.count(),
            fitted=result.fitted,
            fit_error=None if collection.kernel is not None else result.fit_error,
        )

    def submit_ingest(
        self, name: str, documents: Sequence[Document], upsert: bool = False
    ) -> tuple[Job, list[str]]:
        """Check the whole batch now, then store it in the background in committed chunks.

        After the last chunk the kernel is fitted on the whole collection if it has none, so it
        sees the whole corpus rather than the first chunk.
        """
        context = self._context
        limit = context.settings.max_ingest_documents
        if len(documents) > limit:
            raise InvalidInput(
                f"{len(documents)} documents in one ingest job; at most {limit}: split the batch"
            )
        collection = context.catalog.get(name)
        documents = prepare(documents)
        if not upsert:
            existing = collection.existing([document.id for document in documents])
            if existing:
                raise Conflict(
                    f"{len(existing)} document id(s) already exist ({', '.join(existing[:5])}): "
                    "set upsert to replace them, or give new ids"
                )

        encoder = context.ingest_encoder(collection)  # a 409 now if its vectors would differ

        def work(handle: JobHandle) -> None:  # bound to this collection, not to its name
            self._ingest(handle, collection, encoder, documents, upsert)

        job = context.jobs.submit("ingest", name, len(documents), work)
        return job, [document.id for document in documents]

    def _ingest(
        self,
        handle: JobHandle,
        collection: Stored,
        encoder: Encoder,
        documents: list[Document],
        upsert: bool,
    ) -> None:
        context = self._context
        chunk = context.settings.ingest_chunk
        for start in range(0, len(documents), chunk):
            handle.check_stop()
            part = documents[start : start + chunk]
            vectors, encode_seconds = context.encode(encoder, [d.text for d in part], "ingest")
            result = collection.add_vectors(part, vectors, upsert=upsert, fit=False)
            handle.update(
                processed_add=len(part),
                added_add=result.added,
                replaced_add=result.replaced,
                encode_seconds_add=encode_seconds,
                index_seconds_add=result.index_seconds,
            )
        result = collection.fit_if_due()
        handle.update(
            fitted=result.fitted, fit_error=result.fit_error, fit_seconds=result.index_seconds
        )

    def get(self, name: str, doc_id: str) -> StoredDocument:
        return self._context.catalog.get(name).get([doc_id])[0]

    def page(self, name: str, offset: int, limit: int) -> tuple[list[StoredDocument], int]:
        """Documents [offset, offset + limit) in insertion order, and the collection's count."""
        collection = self._context.catalog.get(name)
        return collection.documents(offset, limit), collection.count()

    def delete(self, name: str, ids: Sequence[str]) -> tuple[int, int]:
        """Delete `ids` (unknown ones are skipped): how many went, and how many are left."""
        self._context.check_count(len(ids), "ids")
        collection = self._context.catalog.get(name)
        return collection.delete(list(ids)), collection.count()
