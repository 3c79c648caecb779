"""Safe fetching: refused addresses never reach the network, limits hold, and good pages arrive whole.

No test sends a request anywhere but 127.0.0.1 or 127.0.0.2: links to other addresses go to a transport that
fails the test if it is asked to send anything, and DNS answers come from a table (socket.getaddrinfo is
replaced for every test here, so nothing is looked up on the real network either).
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from index.fetch import Fetcher, FetchLimits, FetchRefused, address_refusal
from tests.fakes.web_server import FakeWebServer, declared_length, endless, page, redirect, slow

CAP = 64 * 1024
ARTICLE = "<html><head><title>Bridge opens</title></head><body><p>The bridge opened on Friday.</p></body></html>"
_REAL_GETADDRINFO = socket.getaddrinfo


class TableDNS:
    """getaddrinfo from a table of names; literal addresses are parsed as usual. Records every host asked."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        self.asked.append(name)
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if name not in self.names:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            return [self._info(address, port) for address in self.names[name]]
        return _REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    @staticmethod
    def _info(address: str, port: int) -> tuple:
        if ":" in address:
            return socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)
        return socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)


class Body(httpx.AsyncByteStream):
    """A response body that arrives as a stream, as it does from the network."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


class NoNetwork(httpx.AsyncBaseTransport):
    """A transport for links that must be refused: it records the request and fails the test."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise AssertionError(f"the fetcher tried to send a request to {request.url}")


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> TableDNS:
    table = TableDNS({
        "localhost": ["127.0.0.1", "::1"],
        "intranet.test": ["10.0.0.7"],
        "mixed.test": ["93.184.216.34", "10.0.0.7"],
        "rebind.test": ["::ffff:169.254.169.254"],
        "news.test": ["127.0.0.1"],
        "public.test": ["93.184.216.34"],
    })
    monkeypatch.setattr(socket, "getaddrinfo", table)
    return table


@pytest.fixture
async def server() -> AsyncIterator[FakeWebServer]:
    async with FakeWebServer() as running:
        yield running


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchLimits(max_bytes=CAP, total_seconds=5), allow_hosts=["127.0.0.1"]) as running:
        yield running


@pytest.fixture
async def offline() -> AsyncIterator[tuple[Fetcher, NoNetwork]]:
    transport = NoNetwork()
    async with Fetcher(transport=transport) as running:
        yield running, transport


async def refusal(fetcher: Fetcher, url: str) -> str:
    with pytest.raises(FetchRefused) as caught:
        await fetcher.fetch(url)
    return str(caught.value)


LITERALS = [
    ("http://127.0.0.1/", "loopback"), ("http://127.8.9.10:8080/x", "loopback"), ("http://[::1]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"), ("http://[::]/", "unspecified"),
    ("http://10.1.2.3/", "private"), ("http://172.16.5.4/", "private"), ("http://192.168.0.1/", "private"),
    ("http://[fc00::1]/", "private"), ("http://[fd12:3456::1]/", "private"), ("http://[fec0::1]/", "private"),
    ("http://192.0.2.1/", "special-purpose"), ("http://[2001:db8::1]/", "special-purpose"),
    ("http://192.0.0.192/latest/meta-data/", "special-purpose"), ("http://[::ffff:192.0.0.192]/", "special-purpose"),
    ("http://[64:ff9b::192.0.0.192]/", "special-purpose"), ("http://198.18.0.1/", "special-purpose"),
    ("http://[2001::1]/", "special-purpose"),  # Teredo
    ("http://169.254.1.2/", "link-local"), ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"), ("http://[fd00:ec2::254]/", "metadata"),
    ("http://100.100.100.200/", "metadata"),
    ("http://224.0.0.1/", "multicast"), ("http://239.255.255.250/", "multicast"), ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"), ("http://255.255.255.255/", "reserved"), ("http://[::127.0.0.1]/", "reserved"),
    ("http://100.64.0.1/", "shared"), ("http://100.127.255.254/", "shared"),
    ("http://[::ffff:127.0.0.1]/", "loopback"), ("http://[::ffff:a9fe:a9fe]/", "metadata"),
    ("http://[2002:7f00:1::1]/", "loopback"), ("http://[2002:a00:1::]/", "private"),
    ("http://[64:ff9b::10.0.0.1]/", "private"), ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
    ("http://2130706433/", "unusual form"), ("http://0x7f.1/", "unusual form"),
    ("http://017700000001/", "unusual form"), ("http://0x7f000001/", "unusual form"),
    ("http://127.1/", "unusual form"), ("http://127.0.0.1./", "unusual form"),
    ("http://3232235521/", "unusual form"), ("http://0/", "unusual form"),
    ("http://0177.0.0.1/", "not a valid link"), ("http://[::ffff:zz]/", "not a valid link"),
]


@pytest.mark.parametrize(("url", "reason"), LITERALS)
async def test_literal_addresses_are_refused_before_any_lookup_or_connection(offline, dns, url, reason) -> None:
    fetcher, transport = offline
    assert reason in await refusal(fetcher, url)
    assert transport.requests == [] and dns.asked == []


@pytest.mark.parametrize("url", ["http://93.184.215.14:65536/", "http://93.184.215.14:99999/",
                                 "https://93.184.215.14:0/"])
async def test_a_port_that_is_no_port_number_is_refused_before_connecting(offline, dns, url) -> None:
    fetcher, transport = offline
    assert await refusal(fetcher, url) == "That link's port is not a port number."
    assert transport.requests == [] and dns.asked == []


@pytest.mark.parametrize(("host", "reason"), [
    ("localhost", "loopback"), ("intranet.test", "private"), ("mixed.test", "private"), ("rebind.test", "metadata"),
    ("nowhere.test", "could not be found"),
])
async def test_names_that_resolve_to_refused_addresses_are_refused_before_connecting(offline, dns, host, reason):
    fetcher, transport = offline
    assert reason in await refusal(fetcher, f"https://{host}/article")
    assert transport.requests == [] and dns.asked == [host]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.txt", "gopher://example.com/",
                                 "javascript:alert(1)", "data:text/html,hi", "ws://example.com/", "example.com/a"])
async def test_only_http_and_https_links(offline, dns, url) -> None:
    fetcher, transport = offline
    assert await refusal(fetcher, url) == "Only http and https links can be added."
    assert transport.requests == [] and dns.asked == []


@pytest.mark.parametrize("url", ["http://user:hunter2@public.test/", "https://user@public.test/",
                                 "http://:hunter2@public.test/"])
async def test_links_with_credentials_are_refused_without_repeating_them(offline, dns, url) -> None:
    fetcher, transport = offline
    message = await refusal(fetcher, url)
    assert message == "Links with a user name or password in them are not accepted."
    assert "hunter2" not in message and transport.requests == [] and dns.asked == []


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "::ffff:93.184.216.34",
                                     "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_addresses_pass_the_check(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


async def test_the_request_goes_to_the_checked_address_with_the_original_name(dns) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, headers={"Content-Type": "text/html; charset=utf-8"}, stream=Body(ARTICLE.encode()))

    async with Fetcher(transport=httpx.MockTransport(answer)) as fetcher:
        fetched = await fetcher.fetch("https://public.test:8443/news/bridge?ref=1#top")
    [request] = sent
    assert str(request.url) == "https://93.184.216.34:8443/news/bridge?ref=1"
    assert request.headers["host"] == "public.test:8443"
    assert request.extensions["sni_hostname"] == "public.test"
    assert fetched.url == "https://public.test:8443/news/bridge?ref=1"
    assert dns.asked == ["public.test"]


async def test_a_redirect_to_a_refused_address_is_not_followed(dns) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    async with Fetcher(transport=httpx.MockTransport(answer)) as fetcher:
        assert "metadata" in await refusal(fetcher, "https://public.test/start")
    assert [str(request.url) for request in sent] == ["https://93.184.216.34/start"]


async def test_an_allowed_local_page_is_fetched(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/article", page(ARTICLE))
    fetched = await fetcher.fetch(server.url("/article"))
    assert (fetched.url, fetched.content_type, fetched.charset) == (server.url("/article"), "text/html", "utf-8")
    assert fetched.content == ARTICLE.encode() and fetched.redirects == ()
    [request] = server.requests
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"


async def test_loopback_is_refused_without_the_allow_list(server: FakeWebServer) -> None:
    server.route("/article", page(ARTICLE))
    async with Fetcher() as fetcher:
        assert "loopback" in await refusal(fetcher, server.url("/article"))
    assert server.requests == []


async def test_a_name_is_resolved_once_and_its_checked_address_is_the_one_connected(server, dns) -> None:
    server.route("/article", page(ARTICLE))
    async with Fetcher(allow_hosts=["news.test"]) as fetcher:
        fetched = await fetcher.fetch(f"http://news.test:{server.port}/article")
    assert fetched.content == ARTICLE.encode()
    assert [request.headers["Host"] for request in server.requests] == [f"news.test:{server.port}"]
    assert dns.asked.count("news.test") == 1


async def test_redirects_are_followed_and_recorded(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/start", redirect("/middle", status=301))
    server.route("/middle", redirect(server.url("/article"), status=308))
    server.route("/article", page(ARTICLE))
    fetched = await fetcher.fetch(server.url("/start"))
    assert fetched.url == server.url("/article")
    assert fetched.redirects == (server.url("/start"), server.url("/middle"))
    assert [request.path for request in server.requests] == ["/start", "/middle", "/article"]


async def test_a_redirect_to_a_loopback_address_not_on_the_allow_list_is_refused(server, fetcher) -> None:
    async with FakeWebServer(host="127.0.0.2") as other:
        other.route("/secret", page("secret"))
        server.route("/go", redirect(other.url("/secret")))
        assert "loopback" in await refusal(fetcher, server.url("/go"))
        assert other.requests == []
    assert [request.path for request in server.requests] == ["/go"]


async def test_five_redirects_are_followed_and_a_sixth_is_refused(server: FakeWebServer, fetcher: Fetcher) -> None:
    for hop in range(1, 7):
        server.route(f"/hop/{hop}", redirect(f"/hop/{hop - 1}"))
    server.route("/hop/0", page(ARTICLE))
    assert len((await fetcher.fetch(server.url("/hop/5"))).redirects) == 5
    server.requests.clear()
    assert await refusal(fetcher, server.url("/hop/6")) == "The link redirects more than 5 times."
    assert len(server.requests) == 6


async def test_a_redirect_loop_is_refused(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/loop", redirect("/loop"))
    assert await refusal(fetcher, server.url("/loop")) == "The link redirects more than 5 times."
    assert len(server.requests) == 6


async def test_a_declared_length_over_the_cap_is_refused_before_reading(server, fetcher) -> None:
    server.route("/huge", declared_length(10 * 1024**3))
    started = time.perf_counter()
    message = await refusal(fetcher, server.url("/huge"))
    assert message == "The page is larger than 0.0625 MB, the most Footnote downloads."
    assert time.perf_counter() - started < 2  # the body never comes: reading it would wait for the time limit


async def test_a_streamed_body_over_the_cap_is_cut_off(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/endless", endless())
    assert "larger than" in await refusal(fetcher, server.url("/endless"))


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
async def test_a_compression_bomb_is_refused_at_the_cap(server, fetcher, encoding, compress) -> None:
    bomb = compress(b"\0" * (CAP * 100))
    assert len(bomb) < CAP
    server.route("/bomb", page(bomb, **{"Content-Encoding": encoding}))
    assert "larger than" in await refusal(fetcher, server.url("/bomb"))


async def test_a_compressed_page_under_the_cap_is_decompressed(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/article", page(gzip.compress(ARTICLE.encode()), **{"Content-Encoding": "gzip"}))
    assert (await fetcher.fetch(server.url("/article"))).content == ARTICLE.encode()
    assert server.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip"])
async def test_other_compressions_are_refused(server: FakeWebServer, fetcher: Fetcher, encoding: str) -> None:
    server.route("/article", page(b"\x1b\x00\x00", **{"Content-Encoding": encoding}))
    assert "compressed the page in a way" in await refusal(fetcher, server.url("/article"))


async def test_a_compressed_page_cut_off_part_way_is_refused(server: FakeWebServer, fetcher: Fetcher) -> None:
    whole = gzip.compress(ARTICLE.encode() * 20)
    server.route("/article", page(whole[: len(whole) // 2], **{"Content-Encoding": "gzip"}))
    assert await refusal(fetcher, server.url("/article")) == "The site sent a compressed page that was cut off."


async def test_a_damaged_compressed_page_is_refused(server: FakeWebServer, fetcher: Fetcher) -> None:
    server.route("/article", page(b"not gzip at all", **{"Content-Encoding": "gzip"}))
    assert await refusal(fetcher, server.url("/article")) == "The site sent a damaged compressed page."


@pytest.mark.parametrize(("path", "content_type", "accepted"), [
    ("/a", "text/html; charset=utf-8", True), ("/a", "application/xhtml+xml", True), ("/a", "text/plain", True),
    ("/a", "text/markdown", True), ("/a", "application/pdf", True), ("/a", "application/x-ndjson", True),
    ("/export.jsonl", "application/json", True), ("/notes.md", "application/octet-stream", True),
    ("/report.pdf", None, True),
    ("/a", "image/png", False), ("/a", "application/zip", False), ("/data.json", "application/json", False),
    ("/file.bin", "application/octet-stream", False), ("/a", None, False), ("/a.html", "text/javascript", False),
])
async def test_content_types(server: FakeWebServer, fetcher: Fetcher, path, content_type, accepted) -> None:
    server.route(path, page(b"Some text.", content_type=content_type))
    if accepted:
        assert (await fetcher.fetch(server.url(path))).content == b"Some text."
    else:
        assert "kind of file Footnote does not read" in await refusal(fetcher, server.url(path))


async def test_a_slow_site_runs_into_the_time_limit(server: FakeWebServer) -> None:
    server.route("/slow", slow(10, page(ARTICLE)))
    async with Fetcher(FetchLimits(total_seconds=0.3), allow_hosts=["127.0.0.1"]) as fetcher:
        started = time.perf_counter()
        assert await refusal(fetcher, server.url("/slow")) == "The site took longer than 0.3 seconds to send the page."
    assert time.perf_counter() - started < 2


async def test_an_error_status_is_refused(server: FakeWebServer, fetcher: Fetcher) -> None:
    assert await refusal(fetcher, server.url("/missing")) == "The site answered with HTTP 404 instead of the page."


async def test_a_site_that_is_not_there(fetcher: Fetcher) -> None:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await runner.cleanup()
    assert await refusal(fetcher, f"http://127.0.0.1:{port}/") == "The connection to the site failed."
