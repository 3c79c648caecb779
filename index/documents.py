"""Loading articles from a corpus folder: Markdown, plain text, HTML and JSONL bundles.

Every loader returns `Document`s whose `text` is normalised (NFC, one space between words, paragraphs
separated by one blank line); all offsets elsewhere refer to that text. Files that cannot be read become
`Problem`s, one line each, and never stop the others from loading. The `*_document` builders take text
already in memory (an upload, a fetched page), so every source goes through the same rules.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import frontmatter
import yaml

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".jsonl")
METADATA_KEYS = ("title", "author", "url", "published")
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

_INLINE_SPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{2,}")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Document:
    """One article: normalised text plus the metadata shown in citations."""

    doc_id: str
    title: str
    text: str
    source: str
    url: str = ""
    author: str = ""
    published: str = ""
    sha256: str = field(default="", compare=False)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """A file (or a line of a bundle) that could not be indexed, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class LoadResult:
    documents: list[Document]
    problems: list[Problem]


class CorpusError(Exception):
    """Raised for input that cannot become a document; the message is the user-facing reason."""


def too_much_text(max_chars: int) -> CorpusError:
    """The refusal of a source past the text cap (any format)."""
    return CorpusError(f"more than {max_chars:,} characters of text, the most one source may have")


def normalise_text(raw: str) -> str:
    """NFC, no control or invisible characters, single spaces, paragraphs split by one blank line.

    Single line breaks inside a paragraph (hard-wrapped text) become spaces. Invisible characters go before NFC,
    so that normalising twice changes nothing ("e", a soft hyphen, an acute accent: "é" either way), as a PDF's
    page offsets, computed on normalised pages before the whole is normalised again, need.
    """
    text = raw.translate(_INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch if ch == "\n" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = unicodedata.normalize("NFC", text)
    paragraphs = []
    for block in _MANY_NEWLINES.split(text):
        joined = _INLINE_SPACE.sub(" ", block.replace("\n", " ")).strip()
        if joined:
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def content_hash(text: str, metadata: dict[str, str]) -> str:
    """sha256 of the normalised text and the metadata that citations show."""
    payload = json.dumps({"text": text, **metadata}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def slugify(value: str) -> str:
    return _SLUG_JUNK.sub("-", value.lower()).strip("-") or "doc"


def make_document(doc_id: str, text: str, source: str, **metadata: str) -> Document:
    """Normalise `text` and clean the metadata; raise CorpusError when nothing is left."""
    clean_text = normalise_text(text)
    if not clean_text:
        raise CorpusError("no text after normalisation (empty article)")
    meta = {key: normalise_text(str(metadata.get(key) or "")).replace("\n\n", " ") for key in METADATA_KEYS}
    if not meta["title"]:
        meta["title"] = _title_from_text(clean_text)
    return Document(
        doc_id=doc_id, text=clean_text, source=source, sha256=content_hash(clean_text, meta), **meta
    )


def _title_from_text(text: str, limit: int = 100) -> str:
    first_line = text.split("\n", 1)[0]
    if len(first_line) <= limit:
        return first_line
    return first_line[:limit].rsplit(" ", 1)[0] + "…"


def read_text_file(path: Path, max_bytes: int) -> str:
    """Read a UTF-8 text file, refusing empty, over-large, binary and undecodable files."""
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(f"file too large ({size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB)")
    return decode_text(path.read_bytes())


def decode_text(data: bytes) -> str:
    """UTF-8 text (a byte-order mark is dropped), refusing empty, binary, undecodable and blank input."""
    if not data:
        raise CorpusError("empty file")
    if b"\x00" in data[:8192]:
        raise CorpusError("binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if not text.strip():
        raise CorpusError("empty file (only whitespace)")
    return text


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split a YAML front-matter block (python-frontmatter's `---` fences, safe YAML) from a Markdown body.
    Keys are lower-cased; a value is kept when it is a scalar (dates as ISO text) or a list of scalars."""
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        return {}, text
    try:
        raw, body = handler.split(text)
    except ValueError:
        raise CorpusError("malformed front matter: the opening '---' is never closed") from None
    try:
        metadata = handler.load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise CorpusError(f"malformed front matter{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}") from None
    if metadata is None:
        return {}, body
    if not isinstance(metadata, dict):
        raise CorpusError("malformed front matter at line 2: expected 'key: value' lines")
    values = {str(key).strip().lower(): _scalar_text(value) for key, value in metadata.items()}
    return {key: value for key, value in values.items() if value is not None}, body


def _scalar_text(value: object) -> str | None:
    """A front-matter value as text: scalars and lists of scalars only (nothing nested can blow up)."""
    if isinstance(value, list):
        items = [_scalar_text(item) for item in value if not isinstance(item, list | dict)]
        return ", ".join(item for item in items if item)
    if isinstance(value, dict) or value is None:
        return None
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def load_markdown(path: Path, doc_id: str, max_bytes: int) -> Document:
    return markdown_document(read_text_file(path, max_bytes), doc_id, str(path))


def markdown_document(text: str, doc_id: str, source: str) -> Document:
    """A Markdown article; its front matter gives the title, author, URL and date."""
    metadata, body = split_front_matter(text)
    return make_document(doc_id, body, source, **metadata)


def load_plain_text(path: Path, doc_id: str, max_bytes: int) -> Document:
    return plain_text_document(read_text_file(path, max_bytes), doc_id, str(path))


def plain_text_document(text: str, doc_id: str, source: str) -> Document:
    """A plain-text article titled by its first line, which stays in the text as a paragraph of its own (with no
    blank line after it, it would run into the first sentence)."""
    first, _, rest = text.strip().partition("\n")
    if rest.strip() and rest.split("\n", 1)[0].strip():
        text = f"{first}\n\n{rest}"
    return make_document(doc_id, text, source, title=first.strip()[:300])


def load_html(path: Path, doc_id: str, max_bytes: int) -> Document:
    return html_document(read_text_file(path, max_bytes), doc_id, str(path))


_DATE_FROM_MARKUP = {"extensive_search": False, "original_date": True}
"""htmldate reads the publication date from the page's metadata and time elements only: its extensive search
takes a footer's "Copyright 2023" for 2023-01-01, a date the article never gives."""


def html_document(html: str | bytes, doc_id: str, source: str, page_url: str = "") -> Document:
    """Main-text extraction with trafilatura (boilerplate, menus and scripts removed).

    The URL is the page's canonical one when it names it, else `page_url`; the date is the one its markup gives.
    """
    import trafilatura

    result = trafilatura.bare_extraction(html, url=page_url or None, with_metadata=True, include_comments=False,
                                         date_extraction_params=_DATE_FROM_MARKUP)
    extracted = result.as_dict() if result is not None else {}
    if not (extracted.get("text") or "").strip():
        raise CorpusError("no article text found in the HTML")
    return make_document(
        doc_id,
        extracted["text"].replace("\n", "\n\n"),  # trafilatura ends every block with one line break
        source,
        title=extracted.get("title") or "",
        author=extracted.get("author") or "",
        url=extracted.get("url") or page_url,
        published=extracted.get("date") or "",
    )


def iter_bundle(path: Path, max_bytes: int) -> Iterator[Document | Problem]:
    """Documents of a JSONL bundle, one article a line; a bad line becomes a Problem."""
    yield from bundle_documents(read_text_file(path, max_bytes), str(path))


def bundle_documents(text: str, source: str) -> Iterator[Document | Problem]:
    """Documents of JSONL text, one article a line; a bad line becomes a Problem named `source:line`."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            yield _bundle_document(line, where)
        except CorpusError as exc:
            yield Problem(where, str(exc))


def _bundle_document(line: str, where: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"malformed JSON line ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError):  # a number of thousands of digits; arrays nested a thousand deep
        raise CorpusError("malformed JSON line (a number too long or values nested too deep)") from None
    if not isinstance(record, dict):
        raise CorpusError("malformed JSON line: expected an object")
    doc_id, text = record.get("doc_id"), record.get("text")
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise CorpusError("missing 'doc_id'")
    if not isinstance(text, str):
        raise CorpusError("missing 'text'")
    metadata = {key: record.get(key) for key in METADATA_KEYS if isinstance(record.get(key), str)}
    return make_document(doc_id.strip(), text, where, **metadata)


_FILE_LOADERS = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_plain_text,
    ".html": load_html,
    ".htm": load_html,
}


def load_corpus(root: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> LoadResult:
    """Load every article under `root` (a folder, or one file); unreadable ones become problems."""
    result = LoadResult([], [])
    if not root.exists():
        result.problems.append(Problem(str(root), "corpus folder does not exist"))
        return result
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if _is_candidate(p, root))
    seen: set[str] = set()
    inside = root.resolve()
    for path in files:
        if path != root and not path.resolve().is_relative_to(inside):
            result.problems.append(Problem(str(path), "refused: it leads outside the corpus folder"))
            continue
        if path.is_dir():
            continue
        for item in _load_file(path, root, max_file_bytes):
            if isinstance(item, Problem):
                result.problems.append(item)
            elif item.doc_id in seen:
                result.problems.append(Problem(item.source, f"duplicate document id {item.doc_id!r}, skipped"))
            else:
                seen.add(item.doc_id)
                result.documents.append(item)
    return result


def _is_candidate(path: Path, root: Path) -> bool:
    """A visible file, or a link (to a file or a folder) that must be checked before it is followed."""
    parts = path.relative_to(root).parts
    return (path.is_file() or path.is_symlink()) and not any(part.startswith(".") for part in parts)


def _load_file(path: Path, root: Path, max_bytes: int) -> Iterator[Document | Problem]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from iter_bundle(path, max_bytes)
            return
        loader = _FILE_LOADERS.get(suffix)
        if loader is None:
            known = ", ".join(SUPPORTED_SUFFIXES)
            raise CorpusError(f"unsupported file type {suffix or '(none)'!r}; expected one of {known}")
        yield loader(path, path_doc_id(path, root), max_bytes)
    except CorpusError as exc:
        yield Problem(str(path), str(exc))
    except OSError as exc:
        yield Problem(str(path), f"cannot read file ({exc.strerror or exc})")


def path_doc_id(path: Path, root: Path) -> str:
    """A stable slug of the path relative to the corpus root, without the extension."""
    relative = path.name if root == path else str(path.relative_to(root).with_suffix(""))
    return slugify(relative)
