"""A fetched or uploaded HTML page's article, extracted by trafilatura in a child process (`index.isolated`).

Trafilatura's time grows with the page's markup, and a crafted page takes minutes (10 MB of links: 60 s), in a
thread nothing can stop. So untrusted pages are read in `python -m index.webpage`, killed past
`ExtractLimits.max_html_seconds`; the operator's own corpus files are read in-process (`index.documents`).
"""

from __future__ import annotations

from index.documents import Document, html_document
from index.isolated import read_isolated, serve


def read_page(data: bytes, charset: str | None, source: str, page_url: str, seconds: float) -> Document:
    """The page's article (unnamed: the caller names it), read in a child process within `seconds`."""
    params = {"charset": charset, "source": source, "page_url": page_url}
    return Document(**read_isolated("index.webpage", params, data, seconds, "the page"))


def html_input(data: bytes, charset: str | None) -> str | bytes:
    """HTML as text in the declared charset, or as bytes for trafilatura to detect the encoding (when the charset
    is unknown or no text encoding)."""
    if charset:
        try:
            return data.decode(charset, errors="replace")
        except (LookupError, UnicodeError):
            pass
    return data


def _read_in_child(data: bytes, params: dict) -> dict:
    page = html_document(html_input(data, params["charset"]), "", params["source"], params["page_url"])
    return page.to_json()


if __name__ == "__main__":
    serve(_read_in_child, "the page")
