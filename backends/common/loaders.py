"""Document loaders: find files under a folder and extract their text (.txt .md .html .pdf .jsonl .csv, and any
other file whose content is text).

Each loader returns the text plus the offsets where pages or rows start, so a chunk can say `page 3` or `row 7`.
A file that cannot be read raises `UnreadableFileError` with the reason; the build turns it into a warning.
A file with no suffix (`README`, `NEWS`) or an unknown one is read as plain text when its first `SNIFF_BYTES`
are text (no NUL byte, valid UTF-8, no known binary signature); otherwise `list_files` skips it with the reason.
CSV and JSONL rows keep every column (or the ones named), each value written as `column: value`.

Memory stays bounded: plain text (`STREAMED_SUFFIXES`) is read block by block as it is chunked (`TextFile`),
and no file over its size limit (`MAX_FILE_BYTES`) is read at all; the reason says how to split it.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "MAX_FILE_BYTES",
    "SNIFF_BYTES",
    "SUPPORTED_SUFFIXES",
    "Document",
    "TextFile",
    "UnreadableFileError",
    "check_size",
    "extract_text",
    "file_sha256",
    "hash_file",
    "list_files",
    "open_document",
    "parse_columns",
    "printable_name",
    "sniff_binary",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".jsonl", ".csv")
STREAMED_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
READ_BLOCK_BYTES = 1 << 20  # plain text is read and handed to the chunker 1 MiB at a time
TEXT_PIECE_CHARS = 1 << 20  # in-memory text is handed over in pieces of this many characters
# Largest file read, by how it is read. Streamed text costs memory only for the chunks and vectors it yields:
# measured 3.2 bytes per byte of text for the chunk records (text with its overlap, offsets, hash), plus 1.5 per
# copy of the vectors (384 float32 per ~1 KB chunk), so a 256 MiB file peaks near 2 GiB. The others are parsed
# whole (pypdf pages, csv and json objects take several times the file size), hence the lower limit.
MAX_FILE_BYTES = {"streamed": 256 << 20, "parsed": 64 << 20}
SNIFF_BYTES = 8192  # bytes looked at to tell text from binary in a file without a known suffix
# Signatures of common binary formats, named in the reason a file is skipped (and how to make it readable).
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed; decompress it (gunzip) to index it"),
    (b"BZh", "bzip2-compressed; decompress it (bunzip2) to index it"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it (unxz) to index it"),
    (b"PK\x03\x04", "a zip archive; unpack it to index its files"),
    (b"%PDF-", "a PDF without the .pdf suffix; rename it to index it"),
    (b"\xff\xfe", "UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8) to index it"),
    (b"\xfe\xff", "UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8) to index it"),
    (b"\x7fELF", "an executable"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
HASH_BLOCK_BYTES = 1 << 20
_SURROGATE = re.compile("[\ud800-\udfff]")  # one for one with U+FFFD, so offsets stay right
_SKIP_HTML_TAGS = {"script", "style", "noscript", "template", "svg"}
_BLOCK_HTML_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
    "article", "pre", "blockquote", "header", "footer", "title", "dd", "dt", "hr",
}  # fmt: skip
_CELL_HTML_TAGS = {"td", "th"}  # a space between table cells, so `<td>E06</td><td>Steam` is not `E06Steam`


class UnreadableFileError(Exception):
    """A file that yields no usable text; the message says why."""


@dataclass(frozen=True)
class Document:
    """Extracted text of one file, with the offsets where its pages or rows begin."""

    source: str
    text: str
    segment_starts: list[int] = field(default_factory=list)
    segment_labels: list[str] = field(default_factory=list)

    def iter_text(self) -> Iterator[str]:
        """The text in pieces of `TEXT_PIECE_CHARS` (what the chunker reads)."""
        for i in range(0, len(self.text), TEXT_PIECE_CHARS):
            yield self.text[i : i + TEXT_PIECE_CHARS]

    def locate(self, start: int, end: int) -> str:
        """Human position of the characters [start, end): pages or rows holding them, else line numbers."""
        if self.segment_starts:
            first, last = (max(bisect.bisect_right(self.segment_starts, o) - 1, 0) for o in (start, max(start, end - 1)))
            if first == last:
                return self.segment_labels[first]
            kind, first_number = self.segment_labels[first].split()
            return f"{kind}s {first_number}–{self.segment_labels[last].split()[-1]}"
        first_line = self.text.count("\n", 0, start) + 1
        last_line = first_line + self.text.count("\n", start, max(start, end - 1))
        return f"line {first_line}" if first_line == last_line else f"lines {first_line}–{last_line}"


@dataclass(frozen=True)
class TextFile:
    """A plain-text file read block by block while it is chunked, so a large file never sits in memory whole.

    Decoded as UTF-8 (a BOM is dropped) with CRLF turned into LF, as `extract_text` does; a bad byte or a
    read error raises `UnreadableFileError` from `iter_text`, part-way through. Lines locate its chunks.
    """

    source: str
    path: Path
    segment_starts: tuple[int, ...] = ()
    segment_labels: tuple[str, ...] = ()

    def iter_text(self) -> Iterator[str]:
        """The decoded text, one read block at a time."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        held, offset = "", 0  # a trailing `\r` waits for the next block: `\r\n` may straddle two
        try:
            with self.path.open("rb") as f:
                while block := f.read(READ_BLOCK_BYTES):
                    text = held + _decode(decoder, block, offset)
                    offset += len(block)
                    text, held = (text[:-1], "\r") if text.endswith("\r") else (text, "")
                    if text:
                        yield text.replace("\r\n", "\n")
            tail = held + _decode(decoder, b"", offset, final=True)
        except OSError as exc:
            raise UnreadableFileError(f"cannot read it ({exc.strerror or exc})") from None
        if tail:
            yield tail


def _decode(decoder: codecs.IncrementalDecoder, block: bytes, offset: int, *, final: bool = False) -> str:
    pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous block
    try:
        return decoder.decode(block, final=final)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text (bad byte at offset {offset - pending + exc.start})") from None


def printable_name(name: str) -> str:
    """`name` as it can be shown and stored: bytes that are not UTF-8 (kept by the OS as surrogates) as `\\xNN`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def sniff_binary(path: Path) -> str | None:
    """Why the file's content is not text, judged from its first `SNIFF_BYTES`; None: it reads as UTF-8 text.

    Binary: a known signature (compressed, archive, image, executable, UTF-16), a NUL byte, or bytes that are not
    UTF-8 (a character cut by the end of the sample is allowed). An empty file counts as text (it yields no chunk).

    Raises:
        OSError: the file cannot be opened or read.
    """
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
        is_whole = not f.read(1)
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return f"binary: {what}"
    nul = head.find(b"\0")
    if nul >= 0:
        return f"binary: a NUL byte at offset {nul}"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=is_whole)
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (bad byte at offset {exc.start})"
    return None


def list_files(docs_dir: Path, exclude: Path | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files under `docs_dir`, recursively, sorted: (readable, skipped with the reason). Hidden files and `exclude`
    are left out.

    A file with a supported suffix is readable (its loader reports what is wrong with it); any other file is
    readable when `sniff_binary` finds text in it, and skipped with its reason otherwise. Folders that vanish or
    cannot be listed while it walks are passed over (`os.walk` ignores their errors); symbolic links to folders are
    not followed, as with `Path.rglob`.
    """
    readable: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    exclude = exclude.resolve() if exclude else None
    found = []
    for folder, dirs, files in os.walk(docs_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".") and Path(folder, d).resolve() != exclude]
        found.extend(Path(folder, name) for name in files if not name.startswith("."))
    for path in sorted(found):
        try:
            if not path.is_file() or (exclude and exclude in path.resolve().parents):
                continue
        except OSError:  # vanished, or a link loop
            continue
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            readable.append(path)
            continue
        try:
            reason = sniff_binary(path)
        except OSError:  # hashing names the error next
            reason = None
        if reason is None:
            readable.append(path)
        else:
            skipped.append((path, reason))
    return readable, skipped


def _is_plain(path: Path) -> bool:
    """Read as plain text (streamed): the plain-text suffixes, and every suffix no other loader claims."""
    suffix = path.suffix.lower()
    return suffix in STREAMED_SUFFIXES or suffix not in SUPPORTED_SUFFIXES


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of the file's content, as read in one pass."""
    digest, n_bytes = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK_BYTES):
            digest.update(block)
            n_bytes += len(block)
    return digest.hexdigest(), n_bytes


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    return hash_file(path)[0]


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 20):,.0f} MiB"


def check_size(path: Path, n_bytes: int | None = None) -> None:
    """Refuse a file over its `MAX_FILE_BYTES` limit before reading it.

    Raises:
        UnreadableFileError: it is too large (the reason says how to split it), or cannot be looked at.
    """
    suffix = path.suffix.lower() or "suffix-less"
    kind = "streamed" if _is_plain(path) else "parsed"
    if n_bytes is None:
        try:
            n_bytes = path.stat().st_size
        except OSError as exc:
            raise UnreadableFileError(f"cannot open it ({exc.strerror or exc})") from None
    limit = MAX_FILE_BYTES[kind]
    if n_bytes > limit:
        how = "e.g. `split -C 100M FILE part-` and name the parts .txt" if kind == "streamed" else \
            "or convert it to .txt, which is read in pieces up to a larger limit"
        raise UnreadableFileError(f"{_mib(n_bytes)} is over the {_mib(limit)} limit for a {suffix} file; split it "
                                  f"into smaller files ({how})")


def open_document(path: Path, source: str, text_column: str | list[str] | None = None) -> Document | TextFile:
    """The file as the chunker reads it: plain text streamed (`TextFile`), other formats extracted whole.

    Raises:
        UnreadableFileError: as `extract_text`; for plain text, a bad byte or read error surfaces while reading.
    """
    if _is_plain(path):
        check_size(path)
        return TextFile(source, path)
    return extract_text(path, source, text_column)


def extract_text(path: Path, source: str, text_column: str | list[str] | None = None) -> Document:
    """Extract the text of one file by its suffix (any suffix but the structured ones is plain text).

    Args:
        path: The file.
        source: Its name as stored in the index (relative path).
        text_column: CSV/JSONL columns to keep (a list, or names separated by commas); None: every column.

    Raises:
        UnreadableFileError: the file cannot be read or decoded, holds no text, or is over `MAX_FILE_BYTES`.
    """
    check_size(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        doc = _load_pdf(path, source)
    elif suffix in (".csv", ".jsonl"):
        rows = _csv_rows(_read_text(path)) if suffix == ".csv" else _jsonl_rows(_read_text(path))
        doc = _join_rows(rows, source, text_column)
    elif suffix in (".html", ".htm"):
        doc = Document(source, _html_to_text(_read_text(path)))
    else:
        doc = Document(source, _read_text(path))
    if not doc.text.strip():
        raise UnreadableFileError("no text in it")
    if _SURROGATE.search(doc.text):  # `"\ud800"` in JSON, a broken PDF: text no UTF-8 store (SQLite) accepts
        doc = Document(source, _SURROGATE.sub("\ufffd", doc.text), doc.segment_starts, doc.segment_labels)
    return doc


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"cannot open it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text (bad byte at offset {exc.start})") from None


def _load_pdf(path: Path, source: str) -> Document:
    import importlib.util

    if importlib.util.find_spec("pypdf") is None:
        raise UnreadableFileError('reading PDF needs `pypdf`: pip install "advisor[rag]"')
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            raise UnreadableFileError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files; each means "unreadable"
        raise UnreadableFileError(f"not a readable PDF ({type(exc).__name__}: {exc})".replace("\n", " ")) from None
    starts, labels, parts, offset = [], [], [], 0
    for number, page in enumerate(pages, start=1):
        starts.append(offset)
        labels.append(f"page {number}")
        parts.append(page)
        offset += len(page) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise UnreadableFileError("no extractable text in the PDF (scanned images need OCR first)")
    return Document(source, text, starts, labels)


def _csv_rows(text: str) -> list[dict]:
    csv.field_size_limit(1 << 24)
    try:
        return list(csv.DictReader(io.StringIO(text), restkey="(extra)"))
    except csv.Error as exc:
        raise UnreadableFileError(f"not valid CSV ({exc})") from None


def _jsonl_rows(text: str) -> list[dict]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnreadableFileError(f"line {number} is not valid JSON ({exc.msg})") from None
        rows.append(value if isinstance(value, dict) else {"text": value})
    return rows


def parse_columns(text_column: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Column names from a list or a comma-separated string, blanks dropped; None (or nothing named): every column."""
    if text_column is None:
        return None
    names = text_column.split(",") if isinstance(text_column, str) else list(text_column)
    return tuple(n.strip() for n in names if n.strip()) or None


def _cell(value: object) -> str:
    """A row value as text: strings stripped, numbers and booleans as written, nested JSON compact, null empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


def _join_rows(rows: list[dict], source: str, text_column: str | list[str] | None) -> Document:
    """One segment per row: `column: value` for each kept column with a value, so the header travels with it."""
    if not rows:
        raise UnreadableFileError("no rows in it")
    columns = list(dict.fromkeys(str(c) for row in rows for c in row))
    wanted = parse_columns(text_column)
    if wanted is not None:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise UnreadableFileError(f"no column `{missing[0]}` (columns: {', '.join(columns)})")
        columns = list(wanted)
    starts, labels, parts, offset = [], [], [], 0
    for number, row in enumerate(rows, start=1):
        by_name = {str(k): v for k, v in row.items()}
        fields = [f"{c}: {value}" for c in columns if (value := _cell(by_name.get(c)))]
        if not fields:
            continue
        starts.append(offset)
        labels.append(f"row {number}")
        parts.append("\n".join(fields))
        offset += len(parts[-1]) + 2
    return Document(source, "\n\n".join(parts), starts, labels)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_HTML_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_HTML_TAGS:
            self.parts.append("\n\n")
        elif tag in _CELL_HTML_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_HTML_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_HTML_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def _html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
