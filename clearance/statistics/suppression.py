"""Small cells hidden so that nobody can be recognized in a published count.

Primary suppression: a count from 1 to :data:`THRESHOLD` - 1 is not
published (a zero names nobody and is shown). Complementary suppression:
where the report publishes a total and its parts (a level's decisions are
its favorable plus its unfavorable ones; each column's "all" row is the sum
of the levels), a relation with exactly one hidden cell would give it away
by subtraction, so one more cell of it is hidden: the smallest non-zero part
not yet hidden (a zero part hides nothing, since counts are never negative),
else the total. This repeats until every relation hides none or at least
two of its cells. Suppressed cells are published as ``null``.

It is the standard rule (as in statistical agencies' table suppression),
not a proof against every linear-programming attack on several tables at
once; a cell is hidden whenever in doubt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

THRESHOLD = 10
"""Counts below this (and above zero) are suppressed."""


@dataclass(frozen=True)
class Relation:
    """``total`` is the sum of ``parts`` (cell keys)."""

    total: str
    parts: tuple[str, ...]


def suppress(cells: Mapping[str, int], relations: Iterable[Relation] = ()) -> dict[str, int | None]:
    """The cells as published: small counts, and whatever would reveal them, as None.

    Raises:
        ValueError: a negative count, or a relation naming an unknown cell or not adding up.
    """
    relations = tuple(relations)
    for key, value in cells.items():
        if value < 0:
            raise ValueError(f"cell {key} is negative")
    for relation in relations:
        missing = [k for k in (relation.total, *relation.parts) if k not in cells]
        if missing:
            raise ValueError(f"relation names unknown cells {missing}")
        if cells[relation.total] != sum(cells[p] for p in relation.parts):
            raise ValueError(f"cell {relation.total} is not the sum of {list(relation.parts)}")
    hidden = {key for key, value in cells.items() if 0 < value < THRESHOLD}
    changed = True
    while changed:
        changed = False
        for relation in relations:
            keys = (relation.total, *relation.parts)
            if sum(1 for k in keys if k in hidden) != 1:
                continue
            pick = _complement(cells, relation, hidden)
            if pick is not None:
                hidden.add(pick)
                changed = True
    return {key: None if key in hidden else value for key, value in cells.items()}


def _complement(cells: Mapping[str, int], relation: Relation, hidden: set[str]) -> str | None:
    candidates: Sequence[str] = sorted(
        (p for p in relation.parts if p not in hidden and cells[p] > 0), key=lambda p: (cells[p], p)
    )
    if candidates:
        return candidates[0]
    if relation.total not in hidden:
        return relation.total
    return None
