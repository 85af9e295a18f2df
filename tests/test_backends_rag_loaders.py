"""Loaders: every supported format yields its text and positions; unreadable files say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backends.common.loaders import UnreadableFileError, extract_text, list_files

CORPUS = Path(__file__).parent / "fixtures" / "rag" / "corpus"


@pytest.mark.parametrize(
    ("name", "expected_phrase"),
    [
        ("handbook.md", "citric acid descaler"),
        ("notes/faq.txt", "two year warranty"),
        ("guide.html", "inverter's maximum"),  # &#39; decoded
        ("manual.pdf", "wet lubricant"),
        ("tickets.csv", "error code E42"),
        ("recipes.jsonl", "sourdough starter"),
    ],
)
def test_each_format_yields_its_text(name: str, expected_phrase: str) -> None:
    pytest.importorskip("pypdf")
    doc = extract_text(CORPUS / name, name)
    assert expected_phrase in doc.text
    assert doc.source == name


def test_html_drops_scripts_and_styles_and_keeps_blocks_apart() -> None:
    text = extract_text(CORPUS / "guide.html", "guide.html").text
    assert "tracking" not in text and "font-family" not in text
    assert "\n\n" in text and "<p>" not in text


def test_pdf_positions_are_pages() -> None:
    pytest.importorskip("pypdf")
    doc = extract_text(CORPUS / "manual.pdf", "manual.pdf")
    start = doc.text.index("wet lubricant")
    assert doc.locate(start, start + 5) == "page 2"
    assert doc.locate(0, start) == "pages 1–2"


def test_csv_keeps_every_column_with_its_header_and_positions_are_rows() -> None:
    doc = extract_text(CORPUS / "tickets.csv", "tickets.csv")
    row3 = "id: 103\ncustomer: Chloe\nbody: The espresso machine leaks water from under the drip tray"
    assert row3 in doc.text  # every column, each value after its header
    start = doc.text.index("drip tray")
    assert doc.locate(start, start + 3) == "row 3"
    assert doc.locate(doc.text.index("Chloe"), doc.text.index("Chloe") + 5) == "row 3"


def test_a_faq_csv_keeps_its_answer_column(tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text('question,answer\n"How do I reset it?","Hold POWER for 10 s until the ring blinks."\n')
    assert extract_text(faq, "faq.csv").text == "question: How do I reset it?\nanswer: Hold POWER for 10 s until " \
        "the ring blinks."


@pytest.mark.parametrize("columns", ["customer", "customer, body", ["customer", "body"]])
def test_csv_columns_can_be_named_and_a_missing_one_is_named(columns: str | list[str]) -> None:
    text = extract_text(CORPUS / "tickets.csv", "t.csv", text_column=columns).text
    assert "customer: Ana" in text and "id:" not in text
    assert ("body: The bicycle chain" in text) == (columns != "customer")
    with pytest.raises(UnreadableFileError, match="no column `summary`.*id, customer, body"):
        extract_text(CORPUS / "tickets.csv", "t.csv", text_column="body,summary")


def test_jsonl_keeps_every_field_and_bad_lines_are_reported(tmp_path: Path) -> None:
    text = extract_text(CORPUS / "recipes.jsonl", "r.jsonl").text
    assert "title: Tomato soup\ncontent: Roast ripe tomatoes" in text
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"q": "size?", "n": 3, "tags": ["a", "b"], "none": null}\n{"extra": "only here"}\n')
    assert extract_text(mixed, "m.jsonl").text == 'q: size?\nn: 3\ntags: ["a", "b"]\n\nextra: only here'
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n')
    with pytest.raises(UnreadableFileError, match="line 2 is not valid JSON"):
        extract_text(bad, "bad.jsonl")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8 text"),
        ("empty.md", b"   \n\n ", "no text"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "not a readable PDF|no extractable text"),
        ("header-only.csv", b"id,text\n", "no rows"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    if name.endswith(".pdf"):
        pytest.importorskip("pypdf")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=reason):
        extract_text(path, name)


def test_list_files_recurses_and_skips_hidden_unsupported_and_excluded(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)
    (docs / ".git").mkdir()
    (docs / ".git" / "notes.txt").write_text("hidden")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / "index").mkdir()
    (docs / "index" / "stale.txt").write_text("inside the index directory")
    supported, skipped = list_files(docs, exclude=docs / "index")
    names = [p.relative_to(docs).as_posix() for p in supported]
    assert names == sorted(names)
    assert set(names) == {"guide.html", "handbook.md", "manual.pdf", "notes/faq.txt", "recipes.jsonl", "tickets.csv"}
    assert [(p.name, reason) for p, reason in skipped] == [("photo.png", "binary: a PNG image")]


# Plain text is streamed block by block (bounded memory); it must read exactly as the whole-file loader does.
AWKWARD = "\ufeffline one\r\nline two — ünïcödé €\r\n\r\nlast\rline\r\n".encode()


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 7, 1 << 20])
def test_streamed_text_reads_as_the_whole_file_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    block_bytes: int) -> None:
    from backends.common.loaders import TextFile, open_document

    monkeypatch.setattr("backends.common.loaders.READ_BLOCK_BYTES", block_bytes)  # cuts CRLF, BOM and characters
    path = tmp_path / "a.txt"
    path.write_bytes(AWKWARD)
    doc = open_document(path, "a.txt")
    assert isinstance(doc, TextFile)
    assert "".join(doc.iter_text()) == extract_text(path, "a.txt").text


@pytest.mark.parametrize("block_bytes", [3, 1 << 20])
def test_a_bad_byte_in_streamed_text_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                block_bytes: int) -> None:
    from backends.common.loaders import open_document

    monkeypatch.setattr("backends.common.loaders.READ_BLOCK_BYTES", block_bytes)
    path = tmp_path / "a.md"
    path.write_bytes("héllo wörld ".encode() + b"\xff rest")
    with pytest.raises(UnreadableFileError, match="bad byte at offset 14"):
        list(open_document(path, "a.md").iter_text())


def test_other_formats_are_loaded_whole_and_lone_surrogates_are_replaced(tmp_path: Path) -> None:
    from backends.common.loaders import Document, open_document

    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "broken \\ud800 escape"}\n')
    doc = open_document(path, "a.jsonl")
    assert isinstance(doc, Document) and doc.text == "text: broken \ufffd escape"  # one for one: offsets still hold
    doc.text.encode("utf-8")  # storable


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.common.loaders import open_document

    monkeypatch.setattr("backends.common.loaders.MAX_FILE_BYTES", {"streamed": 3 << 20, "parsed": 1 << 20})
    (tmp_path / "big.txt").write_bytes(b"x" * (4 << 20))
    (tmp_path / "big.csv").write_bytes(b"text\n" + b"y" * (1 << 20))
    with pytest.raises(UnreadableFileError, match=r"4 MiB is over the 3 MiB limit for a \.txt file; split it"):
        open_document(tmp_path / "big.txt", "big.txt")
    with pytest.raises(UnreadableFileError, match=r"limit for a \.csv file; split it .*convert it to \.txt"):
        open_document(tmp_path / "big.csv", "big.csv")
