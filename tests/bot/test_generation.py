"""Generated answers: verification of every citation, and the client against a fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.answer import ABSTAIN_TEXT, Answer, Citation
from bot.config import Settings
from bot.generation import (
    NOT_FOUND,
    GenerationError,
    LLMClient,
    Passage,
    build_messages,
    generate_answer,
    likely_citation,
    preview,
    split_answer,
    verify,
)
from bot.support import VERDICTS_KEPT, SupportCheck
from index.chunking import split_sentences
from index.documents import load_corpus
from tests.fakes.openai_server import FakeOpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = next(d for d in load_corpus(ROOT / "corpus").documents if d.doc_id == "raisi-maduro-caracas")
QUESTION = "Where did Raisi meet Maduro, and how much is their trade worth?"
KEY = "sk-test-secret-123"


def passage(n: int, phrase: str) -> Passage:
    """The seed article's sentence containing `phrase`, as passage number `n`."""
    sentence = next(s for s in split_sentences(DOCUMENT.text) if phrase in DOCUMENT.text[s.start : s.end])
    return Citation(n=n, doc_id=DOCUMENT.doc_id, title=DOCUMENT.title, url=DOCUMENT.url,
                    quote=DOCUMENT.text[sentence.start : sentence.end], start=sentence.start, end=sentence.end,
                    chunk_id=f"{DOCUMENT.doc_id}#0", score=0.5, paragraph=sentence.paragraph + 1)


PASSAGES = [
    passage(1, "Iranian President Ebrahim Raisi met"),  # Caracas, Monday, Nicolás Maduro, Cuba, Nicaragua
    passage(2, "bilateral trade volume"),  # $600 million in 2021, $3 billion, $10 billion, $20 billion
    passage(3, "expected to arrive in Nicaragua"),  # Tuesday, Cuba, Wednesday
    passage(4, "official visit to Tehran"),  # one year, 20-year agreement
]
P1, P2, P3, P4 = PASSAGES
EXTRACTIVE = Answer(QUESTION, f"{P1.quote} [1]", False, [replace(P1, n=1)], timings_ms={"total": 5.0})


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


_OPEN_CLIENTS: list[LLMClient] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Every client a test made is closed with it (an open one fails the run as a leaked resource)."""
    yield
    while _OPEN_CLIENTS:
        await _OPEN_CLIENTS.pop().aclose()


def client(server: FakeOpenAIServer, timeout: float = 5.0, api_key: str | None = None) -> LLMClient:
    made = LLMClient(server.base_url, "test-model", SecretStr(api_key) if api_key else None, timeout=timeout,
                     max_tokens=200, temperature=0.0)
    _OPEN_CLIENTS.append(made)
    return made


def removed(what: str, sentence: str, reason: str) -> dict[str, str]:
    return {"what": what, "sentence": sentence, "reason": reason}


async def generated(server: FakeOpenAIServer, reply: Reply, **options: object) -> Answer:
    server.script(reply)
    return await generate_answer(EXTRACTIVE, PASSAGES, client(server, **options))


def assert_extractive(answer: Answer) -> None:
    assert answer.mode == "extractive"
    assert (answer.answer, answer.citations) == (EXTRACTIVE.answer, EXTRACTIVE.citations)


# Verification (pure)

async def test_good_answer_is_renumbered_and_cites_verbatim_spans(server: FakeOpenAIServer) -> None:
    answer = await generated(server, Reply(chunks=[
        "Bilateral trade has increased to more than $3 billion [2]. Raisi met Maduro in Caracas on Monday [1]."]))
    assert answer.mode == "generated"
    assert answer.answer == ("Bilateral trade has increased to more than $3 billion. [1] "
                             "Raisi met Maduro in Caracas on Monday. [2]")
    assert [(c.n, c.start, c.end) for c in answer.citations] == [(1, P2.start, P2.end), (2, P1.start, P1.end)]
    assert all(c.quote == DOCUMENT.text[c.start : c.end] for c in answer.citations)
    assert answer.removed == []
    assert answer.timings_ms["total"] == pytest.approx(5.0 + answer.timings_ms["generate"], abs=0.02)


async def test_request_carries_numbered_passages_and_settings(server: FakeOpenAIServer) -> None:
    await generated(server, Reply(chunks=["Raisi met Maduro in Caracas [1]."]))
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    body = request.json
    assert (body["model"], body["stream"], body["max_tokens"], body["temperature"]) == ("test-model", True, 200, 0.0)
    system, user = body["messages"]
    assert system["role"] == "system" and NOT_FOUND in system["content"]
    assert f"[2] ({DOCUMENT.title}) {P2.quote}" in user["content"]
    assert user["content"].endswith(f"Question: {QUESTION}")


async def test_citation_to_a_passage_never_given_is_dropped(server: FakeOpenAIServer) -> None:
    answer = await generated(server, Reply(chunks=[
        "Raisi met Maduro in Caracas on Monday [1][7]. Trade reached $3 billion [7]."]))
    assert answer.mode == "generated"
    assert answer.answer == "Raisi met Maduro in Caracas on Monday. [1]"
    assert [c.start for c in answer.citations] == [P1.start]
    assert answer.removed == [
        removed("citation", "Raisi met Maduro in Caracas on Monday [1][7].", "cites passage [7] that was not given"),
        removed("sentence", "Trade reached $3 billion [7].", "cites passage [7] that was not given"),
    ]


async def test_sentence_with_a_number_not_in_its_passage_is_removed(server: FakeOpenAIServer) -> None:
    answer = await generated(server, Reply(chunks=[
        "Raisi met Maduro in Caracas on Monday [1]. Trade rose to $30 billion [2]."]))
    assert answer.answer == "Raisi met Maduro in Caracas on Monday. [1]"
    assert answer.removed == [
        removed("sentence", "Trade rose to $30 billion [2].", 'number "$30 billion" is not in cited passage [2]')]


@pytest.mark.parametrize(("sentence", "reason"), [
    ("Trade was worth $3 million [2].", 'number "$3 million" is not in cited passage [2]'),
    ("In 2022 the leaders met again [1][3].", 'number "2022" is not in cited passages [1][3]'),
    ("Raisi reaches Nicaragua on Thursday [3].", 'date "Thursday" is not in cited passage [3]'),
    ("Raisi met Vladimir Putin in Caracas [1].", 'name "Vladimir" is not in cited passage [1]'),
    ("Raisi met Maduro to discuss trade [2].", 'name "Maduro" is not in cited passage [2]'),
    ("Officials expect more trade [2].", 'words "officials", "expect" not in cited passage [2]'),
])
def test_unsupported_facts_remove_the_sentence(sentence: str, reason: str) -> None:
    result = verify(f"Raisi met Maduro in Caracas [1]. {sentence}", PASSAGES)
    assert result.text == "Raisi met Maduro in Caracas. [1]"
    assert result.removed == [removed("sentence", sentence, reason)]


@pytest.mark.parametrize("sentence", [
    "Raisi met with Nicolas Maduro in Caracas on Monday [1].",  # accents folded
    "Raisi’s tour ends in Cuba on Wednesday [3].",  # possessive
    "According to Raisi, both regimes plan to increase trade to $10 billion and then $20 billion [2].",
    "Maduro signed a 20-year cooperation agreement with Iran [4].",
    "Trade increased from $600 million in 2021 [2].",
])
def test_supported_facts_are_kept(sentence: str) -> None:
    result = verify(sentence, PASSAGES)
    assert (result.mode, result.removed) == ("generated", [])


def test_citations_after_the_full_stop_and_in_lists_stay_with_their_sentence() -> None:
    text = ("Raisi met Maduro in Caracas. [1]\n- His tour ends in Cuba on Wednesday.[3] Trade increased to $3 billion "
            "[2, 1].")
    assert split_answer(text) == ["Raisi met Maduro in Caracas. [1]", "His tour ends in Cuba on Wednesday. [3]",
                                  "Trade increased to $3 billion [2, 1]."]
    result = verify(text, PASSAGES)
    assert result.text == ("Raisi met Maduro in Caracas. [1] His tour ends in Cuba on Wednesday. [2] "
                           "Trade increased to $3 billion. [3][1]")
    assert [c.start for c in result.citations] == [P1.start, P3.start, P2.start]


@pytest.mark.parametrize("text", [
    "Raisi met Maduro in Caracas `on Monday [1]. Trade increased to more than` $3 billion [2].",
    "[Raisi met Maduro in Caracas on Monday. [1] Trade increased to more than $3 billion](https://evil.example) [2].",
])
def test_markup_split_across_sentences_is_not_joined_back(text: str) -> None:
    result = verify(text, PASSAGES)
    assert result.text == "Raisi met Maduro in Caracas on Monday. [1] Trade increased to more than $3 billion. [2]"
    assert any(note["reason"] == "stray brackets or backticks removed" for note in result.removed)


def test_a_reply_that_says_more_than_not_in_the_articles_is_checked_as_usual() -> None:
    text = "Raisi met Maduro in Caracas on Monday [1]. Otherwise NOT IN THE ARTICLES"
    assert verify(text, PASSAGES).text == preview(text + " ", PASSAGES) == "Raisi met Maduro in Caracas on Monday. [1]"
    assert verify("  Not in the articles.\n", PASSAGES).removed[0]["reason"] == (
        "the model found no answer in the passages")


def test_citations_alone_are_not_a_sentence() -> None:
    result = verify("[2] [3]\nRaisi met Maduro in Caracas [1].", PASSAGES)
    assert result.text == "Raisi met Maduro in Caracas. [1]"
    assert result.removed == [removed("sentence", "[2] [3]", "has no words")]


def test_sentences_beyond_three_are_removed() -> None:
    text = ("Raisi met Maduro [1]. Trade increased to $3 billion [2]. Raisi’s tour ends in Cuba [3]. "
            "Maduro signed an agreement with Iran [4].")
    result = verify(text, PASSAGES)
    assert result.text.count("[") == 3
    assert result.removed == [
        removed("sentence", "Maduro signed an agreement with Iran [4].", "beyond the 3-sentence limit")]


def test_every_passage_is_numbered_in_the_prompt() -> None:
    user = build_messages(QUESTION, PASSAGES)[1]["content"]
    assert [line.split(" ")[0] for line in user.splitlines()[1:5]] == ["[1]", "[2]", "[3]", "[4]"]


# Fallbacks to the extractive answer

async def test_answer_without_citations_falls_back(server: FakeOpenAIServer) -> None:
    text = "Raisi met Maduro in Caracas on Monday. Trade rose to $3 billion."
    answer = await generated(server, Reply(chunks=[text]))
    assert_extractive(answer)
    assert answer.removed == [
        removed("sentence", "Raisi met Maduro in Caracas on Monday.", "has no citation"),
        removed("sentence", "Trade rose to $3 billion.", "has no citation"),
        removed("answer", text, "no sentence survived verification"),
    ]


async def test_not_in_the_articles_falls_back(server: FakeOpenAIServer) -> None:
    answer = await generated(server, Reply(chunks=["NOT IN THE", " ARTICLES"]))
    assert_extractive(answer)
    assert answer.removed == [removed("answer", NOT_FOUND, "the model found no answer in the passages")]


async def test_slow_server_times_out_fast(server: FakeOpenAIServer) -> None:
    started = time.monotonic()
    answer = await generated(server, Reply(chunks=["Raisi met Maduro [1]."], delay=5.0), timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert_extractive(answer)
    assert answer.removed == [removed("answer", "", "generation failed: the LLM server did not answer within 0.5 s")]


async def test_timeout_is_a_total_deadline_not_per_read(server: FakeOpenAIServer) -> None:
    server.script(Reply(chunks=["Raisi "] * 30, chunk_delay=0.1))
    started = time.monotonic()
    with pytest.raises(GenerationError, match=r"did not answer within 0\.5 s"):
        await client(server, timeout=0.5).generate(QUESTION, PASSAGES)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(("status", "body"), [(500, "internal error"), (429, "rate limited, retry later")])
async def test_http_errors_fall_back(server: FakeOpenAIServer, status: int, body: str) -> None:
    answer = await generated(server, Reply(status=status, body=body))
    assert_extractive(answer)
    assert answer.removed == [
        removed("answer", "", f"generation failed: the LLM server answered HTTP {status}: {body}")]


@pytest.mark.parametrize(("lines", "reason"), [
    (['data: {"choices": [{"delta": {"content": "Raisi met"}}]}', "data: {not json"],
     "malformed stream from the LLM server: '{not json'"),
    (['data: {"choices": [{"delta": {"content": 3}}]}'],
     "malformed stream from the LLM server: content is int, not text"),
    (['data: {"error": {"message": "model not loaded"}}'],
     "the LLM server reported an error: {'message': 'model not loaded'}"),
])
async def test_malformed_stream_falls_back(server: FakeOpenAIServer, lines: list[str], reason: str) -> None:
    answer = await generated(server, Reply(lines=lines))
    assert_extractive(answer)
    assert answer.removed == [removed("answer", "", f"generation failed: {reason}")]


async def test_unreachable_server_raises_generation_error() -> None:
    async with FakeOpenAIServer() as stopped:
        base_url = stopped.base_url
    with pytest.raises(GenerationError, match=r"no answer from the LLM server at .*ConnectError"):
        unreachable = LLMClient(base_url, "test-model", timeout=2.0)
        _OPEN_CLIENTS.append(unreachable)
        await unreachable.generate(QUESTION, PASSAGES)


async def test_abstentions_are_returned_without_asking(server: FakeOpenAIServer) -> None:
    abstained = Answer(QUESTION, ABSTAIN_TEXT, True, [])
    assert await generate_answer(abstained, PASSAGES, client(server)) is abstained
    assert server.requests == []


# Streaming and the API key

async def test_stream_reports_only_verified_complete_sentences(server: FakeOpenAIServer) -> None:
    server.script(Reply(chunks=["Raisi met Maduro ", "in Caracas on Monday [1].", " Trade increased to $30 ",
                                "billion [2].", " Trade increased to more ", "than $3 billion [2].",
                                " His tour ends in Cuba [3]."]))
    shown: list[str] = []

    async def on_delta(text: str) -> None:
        shown.append(text)

    result = await client(server).generate(QUESTION, PASSAGES, on_delta)
    first = "Raisi met Maduro in Caracas on Monday. [1]"
    assert shown == [first, f"{first} Trade increased to more than $3 billion. [2]"]
    assert result.text == f"{shown[-1]} His tour ends in Cuba. [3]"
    assert [r["reason"] for r in result.removed] == ['number "$30 billion" is not in cited passage [2]']


class CountingCheck(SupportCheck):
    """The rules, with verdicts kept, recording each (sentence, passages) they are run on."""

    def __init__(self, verdicts_kept: int = VERDICTS_KEPT) -> None:
        super().__init__(verdicts_kept=verdicts_kept)
        self.runs: list[tuple[str, tuple[str, ...]]] = []

    def _verdict(self, sentence: str, passages: Sequence[str]) -> str | None:
        self.runs.append((sentence, tuple(passages)))
        return super()._verdict(sentence, passages)


# an answer as a tokenizer streams it: the closing "]." of each citation comes last
TOKENS = ["Raisi", " met", " Maduro", " in", " Caracas", " [", "1", "].", " Trade", " increased", " to", " more",
          " than", " $3", " billion", " [", "2", "][", "1", "]."]


def test_a_sentence_ending_in_a_citation_is_checked_before_the_stream_closes_it() -> None:
    check = CountingCheck()
    for end in range(1, len(TOKENS) + 1):
        preview("".join(TOKENS[:end]), PASSAGES, check)
        if end == TOKENS.index("1") + 1:  # "… Caracas [1": checked as "[1]" would close it
            assert check.runs == [("Raisi met Maduro in Caracas.", (P1.quote,))]
    assert check.runs[-1] == ("Trade increased to more than $3 billion.", (P2.quote, P1.quote))
    checked_ahead = len(check.runs)
    result = verify("".join(TOKENS), PASSAGES, check=check)
    assert result.text == "Raisi met Maduro in Caracas. [1] Trade increased to more than $3 billion. [2][1]"
    assert len(check.runs) == checked_ahead  # the final check found every verdict kept


def test_a_sentence_that_goes_on_after_its_citation_is_checked_as_it_ends() -> None:
    check = CountingCheck()
    text = "Raisi met Maduro in Caracas [1], and trade increased to $30 billion [2]."
    for end in range(1, len(text) + 1):
        preview(text[:end], PASSAGES, check)
    result = verify(text, PASSAGES, check=check)
    assert result.mode == "extractive"  # the number of the whole sentence is not in its passages
    assert result.removed[0]["reason"] == 'number "$30 billion" is not in cited passages [1][2]'
    assert ("Raisi met Maduro in Caracas.", (P1.quote,)) in check.runs  # checked ahead, in vain


async def test_sentences_are_checked_as_they_stream_even_when_nobody_watches(server: FakeOpenAIServer) -> None:
    server.script(Reply(chunks=TOKENS))
    check, llm = CountingCheck(), client(server)
    stream = llm.stream

    async def marking_its_end(messages: list[dict]) -> AsyncIterator[str]:
        async for delta in stream(messages):
            yield delta
        check.runs.append(("the stream ended", ()))

    llm.stream = marking_its_end  # type: ignore[method-assign]
    result = await llm.generate(QUESTION, PASSAGES, check=check)
    assert result.text == "Raisi met Maduro in Caracas. [1] Trade increased to more than $3 billion. [2][1]"
    assert check.runs[-3:] == [("Trade increased to more than $3 billion.", (P2.quote,)),  # at "[2"
                               ("Trade increased to more than $3 billion.", (P2.quote, P1.quote)),  # at "[2][1"
                               ("the stream ended", ())]  # nothing left for the final check to run
    assert check.runs[0] == ("Raisi met Maduro in Caracas.", (P1.quote,))


def test_a_citation_whose_number_is_yet_to_come_is_checked_ahead_with_the_likeliest() -> None:
    check = CountingCheck()
    preview("Raisi met Maduro in Caracas [", PASSAGES, check)  # the last delta will be "1]."
    assert check.runs == [("Raisi met Maduro in Caracas.", (P1.quote,))]
    result = verify("Raisi met Maduro in Caracas [1].", PASSAGES, check=check)
    assert result.text == "Raisi met Maduro in Caracas. [1]" and len(check.runs) == 1
    preview("Trade increased to more than $3 billion. [", PASSAGES, check)  # cited after its full stop
    assert check.runs[-1] == ("Trade increased to more than $3 billion.", (P2.quote,))


def test_a_wrong_guess_costs_a_check_and_changes_no_verdict() -> None:
    check = CountingCheck()
    preview("Raisi met Maduro in Caracas [", PASSAGES, check)
    result = verify("Raisi met Maduro in Caracas [3].", PASSAGES, check=check)
    assert check.runs == [("Raisi met Maduro in Caracas.", (P1.quote,)), ("Raisi met Maduro in Caracas.", (P3.quote,))]
    assert result.mode == "extractive"  # passage [3] names neither Maduro nor Caracas
    assert result.removed[0]["reason"].endswith("cited passage [3]")


def test_the_likeliest_citation_is_a_passage_the_sentence_shares_words_with_and_does_not_cite_yet() -> None:
    joined = "Raisi met Maduro as bilateral trade volume grew to $3 billion"
    assert likely_citation(f"{joined} [", PASSAGES) == 2  # "bilateral trade volume" outweighs two names
    assert likely_citation(f"{joined} [2][", PASSAGES) == 1
    assert likely_citation("Nothing alike [", PASSAGES) is None


def test_nothing_is_checked_ahead_without_kept_verdicts() -> None:
    check = CountingCheck(verdicts_kept=0)
    for end in range(1, len(TOKENS) + 1):
        preview("".join(TOKENS[:end]), PASSAGES, check)
    previews_after_it = len(TOKENS) - TOKENS.index(" Trade")  # the first sentence is complete from " Trade" on
    assert [sentence for sentence, _ in check.runs] == ["Raisi met Maduro in Caracas."] * previews_after_it


async def test_api_key_is_sent_as_bearer_and_never_logged(server: FakeOpenAIServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply(chunks=["Raisi met Maduro [1]."]), Reply(status=500, body="boom"))
    await generate_answer(EXTRACTIVE, PASSAGES, client(server, api_key=KEY))
    await generate_answer(EXTRACTIVE, PASSAGES, client(server, api_key=KEY))
    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {KEY}"] * 2
    assert "HTTP 500" in caplog.text and KEY not in caplog.text


async def test_no_authorization_header_without_a_key(server: FakeOpenAIServer) -> None:
    await generated(server, Reply(chunks=["Raisi met Maduro [1]."]))
    assert "Authorization" not in server.requests[0].headers


def test_client_from_settings() -> None:
    assert LLMClient.from_settings(Settings(_env_file=None)) is None
    settings = Settings(_env_file=None, llm_base_url="http://127.0.0.1:8080/v1/", llm_model="smollm2",
                        llm_api_key=KEY, llm_timeout_seconds=3)
    llm = LLMClient.from_settings(settings)
    assert llm is not None and settings.llm_enabled
    assert (llm.url, llm.model, llm.timeout, llm.max_tokens) == ("http://127.0.0.1:8080/v1/chat/completions",
                                                                 "smollm2", 3.0, 300)
    assert KEY not in repr(llm)


# What a misbehaving server can send: the asker always gets the extractive answer

class SlowCheck(CountingCheck):
    """A check slow enough that the deadline lands while a sentence is being checked between deltas."""

    def _verdict(self, sentence: str, passages: Sequence[str]) -> str | None:
        time.sleep(0.3)
        return super()._verdict(sentence, passages)


async def test_a_deadline_that_lands_in_a_sentences_check_falls_back(server: FakeOpenAIServer) -> None:
    server.script(Reply(chunks=TOKENS, chunk_delay=0.02))
    answer = await generate_answer(EXTRACTIVE, PASSAGES, client(server, timeout=0.5), check=SlowCheck())
    assert_extractive(answer)
    assert answer.removed == [removed("answer", "", "generation failed: the LLM server did not answer within 0.5 s")]


@pytest.mark.parametrize(("lines", "reason"), [
    ([b'data: {"choices": [{"delta": {"content": "Raisi \xff\xfe met"}}]}\n\n'], "UnicodeDecodeError"),
    (['data: {"choices": {"0": {"delta": {"content": "Raisi"}}}}'], "KeyError"),
    (["data: " + "[" * 100_000 + "]" * 100_000], "RecursionError"),
])
async def test_replies_the_client_cannot_read_fall_back(server: FakeOpenAIServer, lines: list, reason: str) -> None:
    answer = await generated(server, Reply(lines=lines))
    assert_extractive(answer)
    assert len(answer.removed) == 1 and answer.removed[0]["reason"].startswith("generation failed: ")
    assert reason in answer.removed[0]["reason"]


async def test_characters_that_are_no_text_never_reach_the_reply(server: FakeOpenAIServer) -> None:
    answer = await generated(server, Reply(lines=[
        'data: {"choices": [{"delta": {"content": "Raisi met \\ud83d Maduro\\u0000 in Caracas on Monday [1]."}}]}',
        "data: [DONE]"]))
    assert answer.mode == "generated"
    assert "\x00" not in answer.answer and all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in answer.answer)
    answer.answer.encode("utf-8")  # Discord's JSON encoder refuses lone surrogates


async def test_a_reply_far_longer_than_its_token_limit_is_cut_off(server: FakeOpenAIServer) -> None:
    """A server ignoring max_tokens (200 here) streams no more than 16 characters per token into memory."""
    answer = await generated(server, Reply(chunks=["Raisi met Maduro in Caracas on Monday [1]. "] * 2_000))
    assert_extractive(answer)
    assert answer.removed[0]["reason"].startswith("generation failed: the LLM server sent more than 3,")


async def test_the_api_key_an_error_echoes_is_redacted(server: FakeOpenAIServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply(status=401, body=f"Incorrect API key provided: {KEY}"))
    answer = await generate_answer(EXTRACTIVE, PASSAGES, client(server, api_key=KEY))
    assert answer.removed == [removed("answer", "", "generation failed: the LLM server answered HTTP 401: "
                                                    "Incorrect API key provided: [API key]")]
    assert KEY not in caplog.text


def test_the_urls_credentials_are_never_shown() -> None:
    llm = LLMClient("http://proxy-user:proxy-pass@127.0.0.1:9/v1", "m")
    _OPEN_CLIENTS.append(llm)
    assert "proxy-pass" not in llm.url and "proxy-pass" not in repr(llm)


async def test_a_redirect_is_not_followed(server: FakeOpenAIServer) -> None:
    """Passages and question go to the configured server only: a 307 elsewhere (127.0.0.2) is a failure."""
    async with FakeOpenAIServer(host="127.0.0.2") as elsewhere:
        elsewhere.script(Reply(chunks=["Raisi met Maduro in Caracas on Monday [1]."]))
        target = f"{elsewhere.base_url}/chat/completions"
        answer = await generated(server, Reply(status=307, headers={"Location": target}))
        assert elsewhere.requests == []
    assert_extractive(answer)
    assert answer.removed[0]["reason"].startswith("generation failed: the LLM server answered HTTP 307")


async def test_answers_stream_at_most_max_concurrent_at_once(server: FakeOpenAIServer) -> None:
    server.script(*[Reply(chunks=["Raisi met Maduro in Caracas on Monday [1]."], delay=0.3)] * 4)
    llm = LLMClient(server.base_url, "test-model", timeout=5.0, max_concurrent=2)
    _OPEN_CLIENTS.append(llm)
    started = time.monotonic()
    answers = await asyncio.gather(*(generate_answer(EXTRACTIVE, PASSAGES, llm) for _ in range(4)))
    assert all(a.mode == "generated" for a in answers)
    assert time.monotonic() - started >= 0.6  # two rounds of two
