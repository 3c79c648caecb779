"""Fetching a link for the corpus without letting it reach into the bot's own network (SSRF).

A link is fetched only when it is http(s), carries no user name or password, and its host (a literal address,
or every address its name resolves to) is a public unicast address; literal hosts are parsed before any DNS,
and numbers written in the forms only `inet_aton` reads (`2130706433`, `0x7f.1`, `017700000001`) are refused.
The request then goes to the address that was checked, never to a second DNS answer: the URL's host becomes
that address, while the Host header and httpcore's `sni_hostname` request extension (the name sent in TLS and
verified against the certificate) keep the original name. Keep-alive is off, so a TLS connection verified for
one name is never reused for another name on the same address.

Redirects are followed by hand, at most `FetchLimits.max_redirects`, each new link checked the same way. The
body is streamed: a Content-Length over the cap is refused before reading, and both the bytes received and the
bytes decompressed (gzip, deflate; nothing else is accepted) count against the cap, so a compression bomb stops
at the cap. One time limit covers the whole fetch, redirects included.

Every refusal raises `FetchRefused`; its message is one sentence for the person who sent the link.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

import httpx

from index.documents import SUPPORTED_SUFFIXES

MIB = 1024 * 1024
READABLE_SUFFIXES = (*SUPPORTED_SUFFIXES, ".pdf")
ALLOWED_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", "text/markdown",
                                 "application/pdf", "application/x-ndjson"})
_JSON_LINES_ONLY = frozenset({"application/json"})  # accepted for a path ending in .jsonl
_UNTYPED = frozenset({"", "application/octet-stream"})  # accepted for a path ending in a suffix we read
_ACCEPT = ", ".join(sorted(ALLOWED_MEDIA_TYPES)) + ", */*;q=0.1"
_USER_AGENT = "Footnote/0.1 (article fetcher)"
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(map(ipaddress.ip_address, [
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"]))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SPECIAL_PURPOSE = tuple(map(ipaddress.ip_network, [
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20"]))
"""IANA's special-purpose ranges that no public site is on, refused by name rather than through `is_global`,
which Python before 3.11.10 / 3.12.4 got wrong for some (192.0.0.0/24, where 192.0.0.192 is a metadata address)."""
_REFUSED_CLASSES = (
    ("is_unspecified", "an unspecified address (0.0.0.0 or ::)"),
    ("is_loopback", "this machine (a loopback address)"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private network address"),
    ("is_site_local", "a private network address"),
)


class FetchRefused(Exception):
    """The link cannot be fetched; `str()` is one user-facing sentence saying why."""


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost. The bot passes `max_bytes` from FOOTNOTE_FETCH_MAX_MB."""

    max_bytes: int = 10 * MIB
    total_seconds: float = 20.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    """A downloaded body (decompressed) and where it came from."""

    url: str
    content_type: str
    content: bytes
    charset: str | None = None
    redirects: tuple[str, ...] = ()


def check_link(url: str) -> httpx.URL:
    """The link parsed (without its #fragment), when it is an http(s) link with a host and no credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise FetchRefused("That is not a valid link.") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise FetchRefused("Only http and https links can be added.")
    if parsed.userinfo:
        raise FetchRefused("Links with a user name or password in them are not accepted.")
    if not parsed.raw_host:
        raise FetchRefused("That link has no site name in it.")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchRefused("That link's port is not a port number.")
    return parsed.copy_with(fragment=None)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a DNS name; numbers in unusual forms are refused."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        socket.inet_aton(host.rstrip("."))
    except OSError:
        return None
    raise FetchRefused("That link's address is a number written in an unusual form; use the site's name instead.")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4 or NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.ipv4_mapped or address.sixtofour


def address_refusal(address: IPAddress) -> str | None:
    """What kind of non-public address this is (a phrase), or None for a public unicast address."""
    if address in _METADATA:
        return "a cloud metadata address"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        return address_refusal(embedded)
    if address in _SHARED:
        return "a shared carrier network address (100.64.0.0/10)"
    if special := next((network for network in _SPECIAL_PURPOSE if address in network), None):
        return f"a special-purpose address ({special})"
    for attribute, phrase in _REFUSED_CLASSES:
        if getattr(address, attribute, False):
            return phrase
    return None if address.is_global else "an address that is not on the public internet"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (getaddrinfo runs in a worker thread)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchRefused("The site's name could not be found.") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise FetchRefused("The site's name could not be found.")
    return addresses


class Fetcher:
    """Fetches links under `limits`; `async with Fetcher() as fetcher: await fetcher.fetch(url)`.

    `allow_hosts` names hosts (as written in links) whose addresses are not checked: for tests that serve
    pages from 127.0.0.1 (the bot reads FOOTNOTE_FETCH_ALLOW_HOSTS). `transport` replaces the network (tests).
    """

    def __init__(self, limits: FetchLimits | None = None, allow_hosts: Iterable[str] = (),
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.limits = limits or FetchLimits()
        self._allow_hosts = frozenset(host.strip("[]").lower() for host in allow_hosts)
        self._transport = transport or httpx.AsyncHTTPTransport(
            trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def fetch(self, url: str) -> Fetched:
        """Download `url` within the limits, following redirects; raise FetchRefused saying why not."""
        try:
            async with asyncio.timeout(self.limits.total_seconds):
                return await self._follow(check_link(url))
        except TimeoutError:
            raise self._too_slow() from None

    async def _follow(self, url: httpx.URL) -> Fetched:
        redirects: list[str] = []
        while True:
            address = await self._checked_address(url)
            response = await self._send(_pinned_request(url, address, self.limits.total_seconds))
            try:
                if not response.is_redirect:
                    return await self._fetched(url, response, tuple(redirects))
                if len(redirects) == self.limits.max_redirects:
                    raise FetchRefused(f"The link redirects more than {self.limits.max_redirects} times.")
                redirects.append(str(url))
                url = _redirect_target(url, response.headers["location"])
            finally:
                await response.aclose()

    async def _checked_address(self, url: httpx.URL) -> IPAddress:
        """The address to connect to: the literal one, or the first one the name resolves to, once checked."""
        host = url.raw_host.decode("ascii").lower()
        literal = literal_address(host)
        port = url.port or _DEFAULT_PORTS[url.scheme]
        addresses = [literal] if literal is not None else await resolve(host, port)
        if host not in self._allow_hosts:
            for address in addresses:
                phrase = address_refusal(address)
                if phrase:
                    raise FetchRefused(f"That link leads to {phrase}, which Footnote does not fetch from.")
        return addresses[0]

    async def _send(self, request: httpx.Request) -> httpx.Response:
        with self._network_errors():
            response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def _fetched(self, url: httpx.URL, response: httpx.Response, redirects: tuple[str, ...]) -> Fetched:
        if not response.is_success:
            raise FetchRefused(f"The site answered with HTTP {response.status_code} instead of the page.")
        content_type = _checked_media_type(response.headers.get("content-type", ""), url)
        with self._network_errors():
            content = await _read_capped(response, self.limits.max_bytes)
        return Fetched(str(url), content_type, content, response.charset_encoding, redirects)

    @contextmanager
    def _network_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise self._too_slow() from None
        except httpx.HTTPError:
            raise FetchRefused("The connection to the site failed.") from None

    def _too_slow(self) -> FetchRefused:
        return FetchRefused(f"The site took longer than {self.limits.total_seconds:g} seconds to send the page.")


def _pinned_request(url: httpx.URL, address: IPAddress, timeout: float) -> httpx.Request:
    """A GET sent to `address`, with the Host header and the TLS name (SNI and certificate) of `url`."""
    headers = {"Host": url.netloc.decode("ascii"), "Accept": _ACCEPT, "Accept-Encoding": "gzip, deflate",
               "User-Agent": _USER_AGENT}
    extensions = {"timeout": httpx.Timeout(timeout).as_dict(), "sni_hostname": url.raw_host.decode("ascii")}
    return httpx.Request("GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions)


def _redirect_target(url: httpx.URL, location: str) -> httpx.URL:
    try:
        target = url.join(location)
    except httpx.InvalidURL:
        raise FetchRefused("The site redirected to an invalid link.") from None
    return check_link(str(target))


def _checked_media_type(header: str, url: httpx.URL) -> str:
    """The response's media type when it is one Footnote reads (some only with a matching file suffix)."""
    media_type = header.split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(url.path).suffix.lower()
    if (media_type in ALLOWED_MEDIA_TYPES or (media_type in _JSON_LINES_ONLY and suffix == ".jsonl")
            or (media_type in _UNTYPED and suffix in READABLE_SUFFIXES)):
        return media_type
    raise FetchRefused("The link leads to a kind of file Footnote does not read "
                       "(it reads web pages, plain text, Markdown, JSON Lines and PDF).")


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decompressed body, refused as soon as the bytes received or decompressed pass `max_bytes`."""
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    decode = _decoder(response.headers.get("content-encoding", ""), max_bytes)
    body = bytearray()
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        body += decode(chunk, max_bytes - len(body))
    decode.check_complete()
    return bytes(body)


def _decoder(content_encoding: str, max_bytes: int) -> _Identity | _Inflater:
    """A decoder called as (chunk, room) -> decoded bytes that refuses output past `room`."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater(max_bytes)
    raise FetchRefused("The site compressed the page in a way Footnote does not read.")


class _Identity:
    """The body as it came."""

    def __call__(self, chunk: bytes, room: int) -> bytes:
        return chunk

    def check_complete(self) -> None:
        """Nothing to check: HTTP itself refuses a body shorter than its declared length."""


class _Inflater:
    """gzip or zlib ("deflate") decompression that never produces more than the room it is given."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._stream = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # | 32: either header

    def __call__(self, chunk: bytes, room: int) -> bytes:
        try:
            output = self._stream.decompress(chunk, room + 1)
        except zlib.error:
            raise FetchRefused("The site sent a damaged compressed page.") from None
        if len(output) > room:
            raise _too_large(self._max_bytes)
        return output

    def check_complete(self) -> None:
        """Refuse a compressed body that ended before its compressed stream did (a page silently cut short)."""
        if not self._stream.eof:
            raise FetchRefused("The site sent a compressed page that was cut off.")


def _too_large(max_bytes: int) -> FetchRefused:
    return FetchRefused(f"The page is larger than {max_bytes / MIB:g} MB, the most Footnote downloads.")
