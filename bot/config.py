"""All of Footnote's settings: environment variables (prefix FOOTNOTE_) and an optional `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.backends import Backend
from index.embedding import Precision

IdList = Annotated[list[int], NoDecode]
ShardIds = Annotated[list[Annotated[int, Field(ge=0)]] | None, NoDecode]
HostList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Validated once at start-up; every bad value gets its own clear message."""

    model_config = SettingsConfigDict(env_prefix="FOOTNOTE_", env_file=".env", extra="ignore")

    # Corpus and index
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("var/index")
    embed_model: Path | None = Field(None, description="local sentence-transformers folder")
    embed_batch_size: int = Field(1024, ge=1, le=65536, description="most texts in one encoder batch")
    embed_batch_tokens: int = Field(8192, ge=256, description="most padded tokens in one encoder batch")
    embed_precision: Precision = Field(
        "auto", description="auto: bfloat16 where the CPU has AMX, float32 elsewhere")
    embed_backend: Backend = Field(
        "auto", description="auto: the encoder runtime measured fastest on this machine; torch or onnx forces one")
    model_cache_dir: Path = Field(Path("var/models"), description="exported models, runtime choice, token table")
    chunk_words: int = Field(120, ge=10, le=2000)
    chunk_overlap_sentences: int = Field(1, ge=0, le=10)
    hnsw_threshold: int = Field(200_000, ge=1)
    hnsw_ef_search: int = Field(128, ge=8)
    max_file_mb: float = Field(20.0, gt=0)

    # Retrieval and answers
    retrieve_k: int = Field(12, ge=1, le=100)
    candidates_k: int = Field(30, ge=1, le=1000)
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    abstain_threshold: float | None = Field(
        None, ge=0, le=1, description="minimum confidence to answer; unset: the answer model's calibrated threshold")
    answer_model: Path | None = Field(None, description="answer model file; unset: the one shipped with Footnote")
    max_answer_chars: int = Field(400, ge=80, le=4000)
    max_answer_sentences: int = Field(3, ge=1, le=10)

    # Discord
    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    dev_guild_ids: IdList = Field(default_factory=list)
    admin_role_ids: IdList = Field(default_factory=list)
    operator_ids: IdList = Field(default_factory=list, description="users who may rebuild the shared articles")
    allowed_channel_ids: IdList = Field(default_factory=list)
    message_content_intent: bool = False
    shard_count: int | None = Field(None, ge=1, description="Discord shards across all processes")
    shard_id: int | None = Field(None, ge=0, description="shorthand for SHARD_IDS with one shard")
    shard_ids: ShardIds = Field(None, validate_default=True,
                                description="the shards this process runs (0 … SHARD_COUNT - 1); unset: all")
    open_threads: bool = True
    cooldown_seconds: float = Field(5.0, ge=0)
    max_question_chars: int = Field(500, ge=1)
    max_pending_questions: int = Field(256, ge=1, description="questions waiting to be answered; past it: busy")
    kept_threads: int = Field(1000, ge=1, description="threads whose recent turns stay in memory")
    thread_history_messages: int = Field(50, ge=1, le=100, description="a thread's last messages read after a restart")
    database_path: Path = Path("var/footnote.db")
    database_url: SecretStr | None = Field(
        None, description="postgresql://…: snapshots shared by several bot processes (PostgreSQL with pgvector)")

    # Each server's own sources (/add, /remove)
    guilds_dir: Path = Field(Path("var/guilds"), description="every server's added sources and index")
    guild_cache_mb: float = Field(512.0, gt=0, description="memory budget for the servers' loaded indexes")
    guild_max_sources: int = Field(200, ge=1)
    guild_max_mb: float = Field(50.0, gt=0, description="bytes of sources one server may store")
    fetch_max_mb: float = Field(10.0, gt=0, description="largest page or file /add reads")
    fetch_timeout_seconds: float = Field(20.0, gt=0)
    fetch_allow_hosts: HostList = Field(
        default_factory=list, description="for tests only: hosts fetched even on loopback or private addresses")
    adds_per_hour: int = Field(20, ge=1, description="sources one admin may add or remove in an hour")
    reindex_cooldown_seconds: float = Field(600.0, ge=0, description="the least time between two /reindex of a "
                                                                       "server's own sources")

    # Optional generated answers (OpenAI-compatible server)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(20.0, gt=0)
    llm_max_tokens: int = Field(300, ge=16)
    llm_temperature: float = Field(0.1, ge=0, le=2)
    llm_max_concurrent: int = Field(8, ge=1)
    support_model: bool = Field(
        True, description="check generated sentences with the learned support model as well as the rules")

    @field_validator("dev_guild_ids", "admin_role_ids", "operator_ids", "allowed_channel_ids", "fetch_allow_hosts",
                     "shard_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("shard_id")
    @classmethod
    def _shard_in_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None:
            _check_shards([value], info.data)
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        """Folds FOOTNOTE_SHARD_ID in: afterwards `shard_ids` alone says which shards this process runs."""
        shard_id = info.data.get("shard_id")
        if value and shard_id is not None:
            raise ValueError("set FOOTNOTE_SHARD_IDS or FOOTNOTE_SHARD_ID, not both")
        if not value:
            return None if shard_id is None else [shard_id]
        _check_shards(value, info.data)
        return value

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def _check_shards(ids: list[int], data: dict[str, object]) -> None:
    """Each shard below FOOTNOTE_SHARD_COUNT, none twice (skipped when the count itself was invalid)."""
    if "shard_count" not in data:
        return
    count = data["shard_count"]
    if not isinstance(count, int):
        raise ValueError("needs FOOTNOTE_SHARD_COUNT (the number of shards across all processes)")
    outside = [str(shard) for shard in ids if shard >= count]
    if outside:
        raise ValueError(f"{', '.join(outside)} must be below FOOTNOTE_SHARD_COUNT ({count})")
    twice = sorted({shard for shard in ids if ids.count(shard) > 1})
    if twice:
        raise ValueError(f"lists shard {', '.join(map(str, twice))} more than once")


class SettingsError(Exception):
    """Invalid configuration; `str()` lists one line per bad value, naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's validation error into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "FOOTNOTE_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
