"""Adding and removing documents (`qa.manage`): checks before anything is written, incremental
updates, files moved aside rather than deleted, failures that leave everything as it was, and
an old index that keeps answering after a change swapped a new one in."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import qa
from qa import manage
from qa.config import Settings
from qa.errors import QAError, QueryError
from qa.index import build_index, load_index

from .conftest import SEEDS
from .test_formats import zip_bomb

NOTES = "# Field notes\n\nThe lighthouse keeper counted 19 seals on the north rocks in May.\n"
SEALS = "How many seals did the lighthouse keeper count?"


@pytest.fixture()
def small(tmp_path: Path, embedder, settings: Settings) -> Settings:
    """A corpus of three seed articles, indexed, and settings that point at it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in SEEDS.iterdir())[:3]:
        shutil.copy(SEEDS / name, corpus)
    here = settings.replace(corpus=corpus, index=tmp_path / "index")
    build_index(corpus, here.index, settings=here, embedder=embedder, log=lambda _line: None)
    return here


def test_added_files_are_checked_copied_and_answered(small: Settings, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "notes.md").write_text(NOTES, encoding="utf-8")
    (inbox / "again.txt").write_bytes((SEEDS / "000_0cda244c9ed3ffe8.txt").read_bytes())
    (inbox / "tool.exe").write_bytes(b"MZ\x90\x00")
    (inbox / "blank.txt").write_text("   \n", encoding="utf-8")
    zip_bomb(inbox / "bomb.docx")
    lines: list[str] = []
    change = manage.add_files(sorted(inbox.iterdir()), settings=small, log=lines.append)
    assert change.added == ("uploads/notes.md",)
    reasons = dict(change.refused)
    assert reasons["again.txt"] == "already in the corpus as 000_0cda244c9ed3ffe8.txt (same contents)"
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert reasons["blank.txt"] == "empty file"
    assert "zip bomb" in reasons["bomb.docx"]
    assert (small.corpus / "uploads" / "notes.md").read_text(encoding="utf-8") == NOTES
    assert sorted(p.name for p in (small.corpus / "uploads").iterdir()) == ["notes.md"]   # nothing half-written
    assert change.report is not None and change.report.added == ("uploads/notes.md",)
    assert change.report.chunks_embedded == 1          # only the new file was embedded
    assert any(line.startswith("Indexed 4 documents") for line in lines)
    reply = qa.answer(SEALS, index=small.index)
    assert reply.citations and reply.citations[0].doc_id == "uploads/notes.md" and "19" in reply.text
    # The same contents again are reported as the document they already are.
    again = manage.add_files([inbox / "notes.md"], settings=small)
    assert again.added == () and again.refused == (("notes.md", "already in the corpus as uploads/notes.md "
                                                                "(same contents)"),)


def test_names_are_cleaned_and_never_overwrite(small: Settings, tmp_path: Path) -> None:
    assert manage.clean_name("../../etc/passwd.txt") == "passwd.txt"
    assert manage.clean_name("C:\\Users\\ana\\Report <final>.PDF") == "Report _final_.pdf"
    assert manage.clean_name(".hidden.md") == "hidden.md"
    assert manage.clean_name("a\x00b\u202e.txt") == "ab.txt"
    assert len(manage.clean_name("x" * 500 + ".docx")) == manage.MAX_NAME_CHARS
    with pytest.raises(QueryError, match="no usable characters"):
        manage.clean_name("...")
    (small.corpus / "uploads").mkdir()
    (small.corpus / "uploads" / "notes.md").write_text("A different note about gulls.\n", encoding="utf-8")
    source = tmp_path / "notes.md"
    source.write_text(NOTES, encoding="utf-8")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "notes.md").write_text(NOTES.replace("19", "23"), encoding="utf-8")
    change = manage.add_files([source, other / "notes.md"], settings=small)
    assert change.added == ("uploads/notes (2).md", "uploads/notes (3).md")
    assert (small.corpus / "uploads" / "notes.md").read_text(encoding="utf-8") == "A different note about gulls.\n"


def test_limits_are_stated(small: Settings, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 300_000, encoding="utf-8")          # 1.4 MB
    change = manage.add_files([big], settings=small.replace(max_file_mb=1.0))
    assert change.added == () and "above the 1 MB limit (setting max_file_mb)" in change.refused[0][1]
    with pytest.raises(QueryError, match=f"at most {manage.MAX_FILES_PER_ADD} can be added"):
        manage.add_files([big] * (manage.MAX_FILES_PER_ADD + 1), settings=small)


def test_removing_moves_the_file_aside_and_drops_its_chunks(small: Settings, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    manage.add_files([tmp_path / "notes.md"], settings=small)
    before = load_index(small.index)
    change = manage.remove_document("uploads/notes.md", settings=small)
    assert change.removed == ("uploads/notes.md",) and change.moved_to is not None
    moved = small.corpus / change.moved_to
    assert moved.read_text(encoding="utf-8") == NOTES and moved.parts[-4] == ".removed"
    assert not (small.corpus / "uploads" / "notes.md").exists()
    after = load_index(small.index)
    assert "uploads/notes.md" not in after.documents and len(after.chunks) == len(before.chunks) - 1
    assert qa.answer(SEALS, index=small.index).abstained
    # The index that was live before the change still answers whole, from its own files (the
    # swap deleted its folder; what it had open stays readable).
    old = qa.answer(SEALS, index=before)
    assert old.citations[0].doc_id == "uploads/notes.md" and "19" in old.text
    with pytest.raises(QueryError, match="has no document 'uploads/notes.md'"):
        manage.remove_document("uploads/notes.md", settings=small)
    # A later build leaves the moved file alone: hidden folders are not indexed.
    build_index(small.corpus, small.index, settings=small, log=lambda _line: None)
    assert "uploads/notes.md" not in load_index(small.index).documents and moved.exists()


def test_a_failed_update_leaves_everything_as_it_was(small: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    before = load_index(small.index).manifest.files

    def broken(*args, **kwargs):
        raise QAError("the disk is full")

    monkeypatch.setattr(manage, "build_index", broken)
    with pytest.raises(QAError, match="the disk is full"):
        manage.add_files([tmp_path / "notes.md"], settings=small)
    assert not (small.corpus / "uploads" / "notes.md").exists()
    with pytest.raises(QAError, match="the disk is full"):
        manage.remove_document("000_0cda244c9ed3ffe8.txt", settings=small)
    assert (small.corpus / "000_0cda244c9ed3ffe8.txt").exists()       # put back
    assert load_index(small.index).manifest.files == before


def test_one_change_at_a_time(small: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    started, release = threading.Event(), threading.Event()
    real = manage.build_index

    def slow(*args, **kwargs):
        started.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(manage, "build_index", slow)
    worker = threading.Thread(target=manage.add_files, args=([tmp_path / "notes.md"],), kwargs={"settings": small})
    worker.start()
    try:
        assert started.wait(30)
        with pytest.raises(QueryError, match="Another change to the documents is running"):
            manage.remove_document("000_0cda244c9ed3ffe8.txt", settings=small)
    finally:
        release.set()
        worker.join(60)
    assert "uploads/notes.md" in load_index(small.index).documents


def test_the_documents_list(small: Settings, tmp_path: Path) -> None:
    first = load_index(small.index)
    stamps = {d: first.documents[d].indexed_at for d in first.documents}
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    index = manage.add_files([tmp_path / "notes.md"], settings=small).index
    assert index is not None
    for doc_id, stamp in stamps.items():     # unchanged files keep the time they were embedded
        assert index.documents[doc_id].indexed_at == stamp
    every = manage.document_rows(index)
    rows, matched = manage.documents_table(every)
    assert matched == 4 and rows[0][:5] == ["Field notes", "uploads/notes.md", "", "", "1"]
    assert rows[0][5].endswith("UTC")
    found, count = manage.documents_table(every, needle="FIELD")
    assert count == 1 and found[0][1] == "uploads/notes.md"
    assert manage.documents_table(every, limit=2)[0].__len__() == 2


def test_questions_during_changes_are_answered_from_one_index(small: Settings, tmp_path: Path) -> None:
    """The chat's LiveIndex: questions asked while documents are added and removed each get an
    answer wholly from the index that was live when they began (its own documents and text)."""
    from qa.live import LiveIndex

    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    live = LiveIndex(load_index(small.index))
    done = threading.Event()
    problems: list[str] = []
    answered: list[int] = []

    def ask() -> None:
        questions = [SEALS, "Where is TikTok's US user data stored?"]
        while not done.is_set():
            index, _ = live.get()
            for question in questions:
                try:
                    reply = qa.answer(question, index=index)
                except Exception as exc:  # noqa: BLE001 - any error is a finding
                    problems.append(repr(exc))
                    continue
                for c in reply.citations:
                    if c.doc_id not in index.documents:
                        problems.append(f"{c.doc_id} is not in the index the question began with")
                    elif not any(ch.start <= c.start and c.end <= ch.end
                                 and ch.text[c.start - ch.start:c.end - ch.start] == c.quote
                                 for ch in index.chunks_of(c.doc_id)):
                        problems.append(f"the quote of {c.doc_id} is not that index's text")
                answered.append(1)

    workers = [threading.Thread(target=ask) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(2):
            live.swap(manage.add_files([tmp_path / "notes.md"], settings=small, wait=30).index)  # type: ignore[arg-type]
            live.swap(manage.remove_document("uploads/notes.md", settings=small, wait=30).index)  # type: ignore[arg-type]
            shutil.rmtree(small.corpus / ".removed")
    finally:
        done.set()
        for worker in workers:
            worker.join(60)
    assert problems == [] and len(answered) >= 4


def test_a_long_upload_reports_its_progress_and_a_huge_pdf_is_refused(small: Settings, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(10_000):
        pdf.new_page(200, 200).close()
    pdf.save(str(tmp_path / "huge.pdf"))
    pdf.close()
    article = tmp_path / "article.txt"
    article.write_bytes((SEEDS / "004_99cfcbda6ab29d43.txt").read_bytes())
    lines: list[str] = []
    change = manage.add_files([tmp_path / "huge.pdf", article], settings=small, log=lines.append)
    assert change.added == ("uploads/article.txt",)
    assert change.refused == (("huge.pdf", "10,000 pages, above the 2,000-page limit (setting max_pdf_pages)"),)
    progress = [line for line in lines if line.startswith("Embedded ")]
    assert len(progress) >= 3 and progress[-1].endswith("texts (100%).")
