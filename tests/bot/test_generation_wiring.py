"""Generated answers wired through the CLI (eval side by side) and the service, against a fake LLM server."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import cli
from bot.service import QAService
from tests.conftest import DATA
from tests.fakes.openai_server import FakeOpenAIServer, Reply

GOOD = Reply(chunks=["Raisi met Maduro in ", "Caracas on Monday [1]. It was the first stop on ",
                     "Raisi's tour of Latin America [1]."])


async def test_service_streams_a_verified_generated_answer(seed_settings, embedder) -> None:
    async with FakeOpenAIServer() as server:
        server.script(GOOD)
        settings = seed_settings.model_copy(update={"llm_base_url": server.base_url, "llm_model": "m"})
        service = QAService(settings, embedder)
        await service.start()
        seen: list[str] = []
        answer = await service.ask("Who did Ebrahim Raisi meet in Venezuela?", on_delta=seen.append)
        await service.close()
    assert service.support_model is not None and service.support_model.onnx_file.is_file()  # the model checked it
    assert answer.mode == "generated"
    assert answer.answer == ("Raisi met Maduro in Caracas on Monday. [1] It was the first stop on Raisi's tour of "
                             "Latin America. [1]")
    assert seen == ["Raisi met Maduro in Caracas on Monday. [1]"]
    quote = answer.citations[0].quote
    assert answer.citations[0].start == seed_text(service).index(quote)
    assert "Maduro" in server.requests[0].json["messages"][-1]["content"]


def seed_text(service: QAService) -> str:
    return service.answerer.snapshot.documents["raisi-maduro-caracas"].text


async def test_eval_reports_both_modes_side_by_side(monkeypatch, seed_settings, embedder, capsys) -> None:
    monkeypatch.setattr(cli, "_shared_embedder", lambda *_: embedder)
    monkeypatch.setenv("FOOTNOTE_INDEX_DIR", str(seed_settings.index_dir))
    monkeypatch.setenv("FOOTNOTE_CORPUS_DIR", str(seed_settings.corpus_dir))
    questions = str(DATA / "seed_questions.jsonl")
    async with FakeOpenAIServer() as server:
        server.script(*[Reply(chunks=["NOT IN THE ARTICLES"])] * 20)
        monkeypatch.setenv("FOOTNOTE_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("FOOTNOTE_LLM_MODEL", "m")
        status = await asyncio.to_thread(cli.main, ["eval", questions, "--json", "--no-baseline"])
        data = json.loads(capsys.readouterr().out)
        answered = sum(row["confidence"] > 0 for row in data["extractive"]["rows"])  # at threshold 0
        assert status == 0 and answered >= 10 and len(server.requests) == answered
        status = await asyncio.to_thread(cli.main, ["eval", questions])
    table = capsys.readouterr().out
    assert set(data) == {"extractive", "generated"}
    assert data["generated"]["correct"] == data["extractive"]["correct"]  # fallbacks keep the extractive answer
    # both modes answer every question and eval judges its confidence: none abstains for the threshold alone
    assert [(r["abstained"], r["confidence"]) for r in data["generated"]["rows"]] == [
        (r["abstained"], r["confidence"]) for r in data["extractive"]["rows"]]
    assert table.splitlines()[0].split() == ["extractive", "generated", "baseline"]
    assert status == 0


@pytest.mark.parametrize("reply", [Reply(status=500, body="boom"), Reply(lines=["data: {oops"])])
async def test_service_falls_back_quietly(seed_settings, embedder, reply: Reply) -> None:
    async with FakeOpenAIServer() as server:
        server.script(reply)
        settings = seed_settings.model_copy(update={"llm_base_url": server.base_url, "llm_model": "m"})
        service = QAService(settings, embedder)
        await service.start()
        answer = await service.ask("Who did Ebrahim Raisi meet in Venezuela?")
        await service.close()
    assert answer.mode == "extractive" and "Maduro" in answer.answer
    assert answer.removed[0]["reason"].startswith("generation failed")


async def test_the_support_model_can_be_turned_off(seed_settings, embedder) -> None:
    async with FakeOpenAIServer() as server:
        server.script(GOOD)
        settings = seed_settings.model_copy(update={"llm_base_url": server.base_url, "llm_model": "m",
                                                    "support_model": False})
        service = QAService(settings, embedder)
        await service.start()
        answer = await service.ask("Who did Ebrahim Raisi meet in Venezuela?")
        await service.close()
    assert service.support_model is None
    assert answer.mode == "generated" and answer.answer.startswith("Raisi met Maduro in Caracas on Monday. [1]")
