"""Revision 0004: each version's chunks get an HNSW index of their own (partial, `WHERE snapshot_id = '…'`,
built after its rows are copied) instead of one index over every version's chunks, which each publish grew by
inserting every chunk again. The one index is dropped and the versions kept get theirs."""

from alembic import op
from sqlalchemy import text

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    connection = op.get_bind()
    old = connection.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'footnote_chunks' "
                                  "AND indexname LIKE 'footnote\\_chunks\\_hnsw\\_%'")).scalars().all()
    for name in old:
        op.execute(f'DROP INDEX "{name}"')
    versions = connection.execute(text(
        "SELECT snapshot_id, (SELECT vector_dims(embedding) FROM footnote_chunks AS c "
        "WHERE c.snapshot_id = s.snapshot_id LIMIT 1) FROM footnote_snapshots AS s"))
    for snapshot_id, dimension in versions.all():
        if dimension is None:  # a version without chunks
            continue
        quoted = snapshot_id.replace("'", "''")
        op.execute(f'CREATE INDEX "footnote_chunks_hnsw_{snapshot_id}" ON footnote_chunks USING hnsw '
                   f"((embedding::vector({int(dimension)})) vector_cosine_ops) WHERE snapshot_id = '{quoted}'")
