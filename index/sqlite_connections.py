"""The document store's SQLite connections: one per thread, in WAL mode, all closed together.

WAL lets readers (one connection per thread) run while the writer commits; once closed, no
connection is opened again by path, since a new collection may live there by then.
"""

import sqlite3
import threading
from pathlib import Path

from index.errors import StorageError


class ThreadConnections:
    """A connection for each calling thread to the SQLite file at `path`, made on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's connection (opened now if it has none); StorageError once closed."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:  # never reconnect by path: a new collection may live there now
                raise StorageError(f"{self.path} is closed: its collection was closed or deleted")
            try:
                connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open document store {self.path}: {exc}") from exc
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        """Close every thread's connection; `get` refuses from now on."""
        with self._connections_lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
