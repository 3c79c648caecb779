"""Footnote's search engine: ingest, chunk, embed, store and search articles (no Discord here)."""
