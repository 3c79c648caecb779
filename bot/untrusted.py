"""Untrusted text in, plain text out: the markup a generated sentence may carry (links, mentions, invites,
masked links, images, headings, code, Discord's tags) is removed unless the same span is in the passages it
cites; a link stays only when it is a whole link of those passages, not a piece of one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_MASKED_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?[^)\n]*\)")
_HEADING = re.compile(r"^\s{0,3}(?:(?:#{1,6}|-#)\s+)+", re.MULTILINE)
"""Headings and Discord's subtext ("-# "), however many are stacked ("# # Title")."""
_INLINE_CODE = re.compile(r"`+([^`\n]*)`+")
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>|@(?:everyone|here)\b|</[\w -]+:\d+>|<t:-?\d+(?::[a-zA-Z])?>"
                      r"|<a?:\w+:\d+>|<id:\w+>", re.IGNORECASE)
"""Mentions of users, roles and channels, @everyone and @here, and Discord's other tags: slash commands,
timestamps, custom emoji (images) and server guide links."""
_INVITE = re.compile(r"(?:https?://)?(?:www\.)?(?:discord(?:app)?\.(?:gg|com/invite|io|me|li)|dsc\.gg)/[^\s<>)]+",
                     re.IGNORECASE)
_PLAIN_LINK = re.compile(r"https?://[^\s<>\[\]`|*~\\]+", re.IGNORECASE)
_URL = re.compile(r"<?(?:https?|ftp)://[^\s<>]+>?|\bwww\.[^\s<>]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?)]}\"'”’"
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class Cleaned:
    """Text with its markup removed, and one note per removal ("link https://… is not in the passages")."""

    text: str
    removed: tuple[str, ...]


def remove_code_blocks(text: str) -> Cleaned:
    """Fenced code blocks go whole: an article quote never needs one."""
    removed = tuple(f"code block {_shown(m.group(0))} removed" for m in _FENCED_CODE.finditer(text))
    return Cleaned(_FENCED_CODE.sub(" ", text), removed)


def plain_text(text: str, sources: Sequence[str]) -> Cleaned:
    """`text` without links, mentions, invites, masked links, images, headings and code markup, except the
    spans that occur verbatim in `sources`; a URL that stays is wrapped in <> so Discord shows no preview."""
    source = "\n".join(sources)
    links = {_bare(match.group(0)) for match in _URL.finditer(source)}
    removed: list[str] = []

    def drop(kind: str, match: re.Match[str], keep: str = "") -> str:
        removed.append(f"{kind} {_shown(match.group(0))} is not in the cited passages")
        return keep

    def image(match: re.Match[str]) -> str:
        return drop("image", match)

    def masked_link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if url and url in links:
            return f"{label} <{url}>"
        return drop("masked link", match, label)

    def mention(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0) in source else drop("mention", match)

    def invite(match: re.Match[str]) -> str:
        return drop("invite link", match)  # never shown, even when an article prints one

    def url(match: re.Match[str]) -> str:
        bare = _bare(match.group(0))
        tail = match.group(0).strip("<>")[len(bare):]
        if bare in links:
            return f"<{bare}>{tail}"
        return drop("link", match, tail)

    text = _IMAGE.sub(image, text)
    text = _MASKED_LINK.sub(masked_link, text)
    text = _INVITE.sub(invite, text)
    text = _URL.sub(url, text)
    text = _MENTION.sub(mention, text)
    text = _INLINE_CODE.sub(lambda m: m.group(1), text)  # first: "`#` Title" is a heading once unwrapped
    if _HEADING.search(text):
        removed.append("heading markup removed")
        text = _HEADING.sub("", text)
    return Cleaned(_SPACES.sub(" ", text).strip(), tuple(removed))


def is_invite(url: str) -> bool:
    """Whether `url` is a Discord invite link (never shown, even as a source's link)."""
    return _INVITE.search(url) is not None


def source_link(url: str) -> str | None:
    """A source's URL (from its page, so written by the page's author) when it is safe to show as a link: one
    plain http(s) URL with a host, without spaces, square or angle brackets and the characters of other markup
    (`https://a [Refund](https://b)` would show a masked link), not an invite; else None."""
    if not _PLAIN_LINK.fullmatch(url) or is_invite(url):
        return None
    try:
        return url if urlsplit(url).hostname else None
    except ValueError:
        return None


def _bare(link: str) -> str:
    """A link as written, without the <> around it and the punctuation after it."""
    return link.strip("<>").rstrip(_TRAILING_PUNCTUATION)


def _shown(span: str, limit: int = 80) -> str:
    """A removed span as operators see it in notes: quoted, one line, cut."""
    flat = " ".join(span.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
