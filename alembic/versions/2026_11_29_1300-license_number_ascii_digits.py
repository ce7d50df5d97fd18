"""Licence numbers stored with other digits than 0-9 are written with 0-9

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 13:00:00+00:00

Until revision 0023's release the number's parser read any Unicode decimal digit (Python's ``\\d``), so
``XK１２-００１-０００１８`` in full-width digits was recorded as typed. The parser and the docs now take
0-9 only, which made such a licence impossible to find with ``?number=`` (its query is refused
with a 422). Each such number is rewritten with the digits 0-9, as a client now has to type it. A
number whose rewriting equals a licence already recorded is the same licence recorded twice in two
spellings: it is left as it is and named in a warning of the migration's log, for the bureau to resolve (one
of the two records is to be corrected by hand), rather than merged or dropped here. The rewriting
is not an audit event: the licence is the same, written as the service now reads it (the demo and
the large data set have no such number).
"""
import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
WELL_FORMED = r"^(（[^（）]）)?XK[0-9]{2}-[0-9]{3}-[0-9]{5}$"


def ascii_digits(number: str) -> str:
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in number)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, number FROM license WHERE number !~ :ok ORDER BY number"),
                        {"ok": WELL_FORMED}).all()
    for licence_id, number in rows:
        rewritten = ascii_digits(number)
        if rewritten == number:
            continue
        taken = conn.execute(sa.text("SELECT id FROM license WHERE number = :n"), {"n": rewritten}).scalar()
        if taken is not None:
            log.warning("licence %s (%r) left as it is: %r is licence %s", licence_id, number, rewritten, taken)
            continue
        conn.execute(sa.text("UPDATE license SET number = :n WHERE id = :id"), {"n": rewritten, "id": licence_id})


def downgrade() -> None:
    pass  # the numbers' earlier spellings are not kept; 0-9 digits are valid before this revision too
