"""Catalog: collection names are safe directory names; create and delete are all-or-nothing."""

import threading
from pathlib import Path

import pytest

from index import Catalog, Document, Settings
from index.data_dir import LOCK_FILE, DataDirBusy
from index.errors import Conflict, InvalidInput, NotFound, StorageError


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "data")


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", ".hidden", "a" * 65, "x y"])
def test_names_that_could_leave_the_data_directory_are_refused(catalog: Catalog, name: str) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        catalog.create(name)
    with pytest.raises(InvalidInput):
        catalog.get(name)
    assert [p.name for p in catalog.root.iterdir()] == [LOCK_FILE]
    assert not (catalog.root.parent / "escape").exists()


def test_create_get_list_delete(catalog: Catalog) -> None:
    created = catalog.create("news", settings=Settings(k=16))
    created.add([Document("Stocks fell on Monday."), Document("Rain is expected today.")])
    assert catalog.names() == ["news"]
    assert catalog.get("news") is created
    with pytest.raises(Conflict, match="already exists"):
        catalog.create("news")
    catalog.delete("news")
    assert catalog.names() == [] and not (catalog.root / "news").exists()
    with pytest.raises(NotFound, match="no collection named 'news'"):
        catalog.get("news")
    with pytest.raises(NotFound):
        catalog.delete("news")


def test_reopened_catalog_serves_the_same_collection(catalog: Catalog) -> None:
    catalog.create("a").add([Document("one cat", id="1"), Document("two dogs", id="2")])
    catalog.close()
    again = Catalog(catalog.root)
    assert again.open_all() == {}
    assert [h.id for h in again.get("a").search(["a kitten"], top_k=1)[0]] == ["1"]


def test_a_broken_collection_is_reported_and_the_others_still_open(catalog: Catalog) -> None:
    catalog.create("good").add([Document("one"), Document("two")])
    catalog.create("bad")
    catalog.close()
    (catalog.root / "bad" / "manifest.json").write_text("{ not json")
    again = Catalog(catalog.root)
    errors = again.open_all()
    assert list(errors) == ["bad"] and "unreadable" in errors["bad"]
    assert again.get("good").count() == 2
    with pytest.raises(StorageError):
        again.get("bad")


def test_leftovers_of_interrupted_creates_and_deletes_are_cleared(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / ".creating-x-1234abcd").mkdir(parents=True)
    (root / ".deleting-y-5678abcd").mkdir()
    assert Catalog(root).names() == []
    assert [p.name for p in root.iterdir()] == [LOCK_FILE]


def test_a_start_removes_no_hidden_folder_it_did_not_create(tmp_path: Path) -> None:
    """Issue 17 item 3: `serve --data-dir .` in a repository deleted its .git (and .ssh)."""
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("secret")
    (tmp_path / ".creating-notes").mkdir()  # like ours, but not a name we make
    (tmp_path / ".deleting-x-1234abcd").mkdir()  # ours: an interrupted delete
    Catalog(tmp_path).close()
    assert (tmp_path / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (tmp_path / ".ssh" / "id_ed25519").read_text() == "secret"
    assert (tmp_path / ".creating-notes").is_dir()
    assert not (tmp_path / ".deleting-x-1234abcd").exists()


def test_a_second_catalog_on_the_same_directory_is_refused(catalog: Catalog) -> None:
    """Issue 17 item 14: the lock is the library's, so a script cannot open a served directory."""
    with pytest.raises(DataDirBusy, match="in use by another whitened-search process"):
        Catalog(catalog.root)
    catalog.close()
    Catalog(catalog.root).close()  # free again once closed


def test_a_deleted_collection_leaves_the_unavailable_list(catalog: Catalog) -> None:
    catalog.create("bad").add([Document("one"), Document("two")])
    catalog.close()
    (catalog.root / "bad" / "manifest.json").write_text("{ not json")
    again = Catalog(catalog.root)
    assert list(again.open_all()) == ["bad"] and list(again.unavailable()) == ["bad"]
    again.delete("bad")
    assert again.unavailable() == {}


def test_opening_one_collection_does_not_hold_up_the_others(catalog: Catalog) -> None:
    """Issue 17 item 14: one lock for all made a slow open (a large reconcile) stall every
    request; now each name has its own."""
    catalog.create("slow")
    catalog.create("quick").add([Document("one"), Document("two")])
    finished = threading.Event()
    with catalog._name_lock("slow"):  # as if "slow" were opening and reconciling
        worker = threading.Thread(target=lambda: (catalog.get("quick"), finished.set()))
        worker.start()
        assert finished.wait(timeout=30), "get('quick') waited for the lock of 'slow'"
    worker.join()
