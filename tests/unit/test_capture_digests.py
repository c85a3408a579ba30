"""The capture's inlined digests are the model's and the store's functions."""

from __future__ import annotations

from zkdrift.model import Acl, Stat, path_key, value_key, wire_order
from zkdrift.store import snapshots


def test_prepared_digests_equal_path_value_and_state_keys() -> None:
    stat = Stat(version=3, cversion=1, czxid=7, mzxid=9, pzxid=8, ctime=1, mtime=2, data_length=5)
    acl = (Acl(31, "world", "anyone"), Acl(1, "digest", "bob:x"))
    nodes = [
        ("/app/caf\u00e9", b"value", wire_order(stat), None),
        ("/app/secured", b"\x00\xff", wire_order(stat), acl),
        ("/", b"", wire_order(Stat()), ()),
    ]

    prepared = snapshots._prepare(nodes).nodes

    assert [p[:3] for p in prepared] == [n[:3] for n in nodes]
    for (path, data, wire, node_acl), (_p, _d, _s, pd, dd, sd, acl_json) in zip(
        nodes, prepared, strict=True
    ):
        assert pd == path_key(path) and len(pd) == 12
        assert dd == value_key(data)
        assert sd == snapshots.wire_state_key(dd.hex(), wire, node_acl)
        assert acl_json == snapshots.acl_to_json(node_acl)


def _chunk(keys: list[bytes], states: list[bytes]) -> snapshots._Chunk:
    return snapshots._Chunk([], b"".join(keys), b"".join(states), 0, 0, 0, 0)


def test_open_rows_in_memory_match_by_whole_digest_in_any_order() -> None:
    """Digests that differ only in a trailing zero byte, or end in zeros, stay apart;
    rows read out of order are sorted; unmatched rows are the removed ones."""

    base = b"\x07" * 11
    keys = [base + b"\x01", base + b"\x00", b"\x00" * 12, b"\xff" * 12]
    states = [b"s1" + b"\x00" * 6, b"s2" + b"\x00" * 6, b"\x00" * 8, b"s4" + b"\x00" * 6]
    rows = snapshots._OpenRows(b"".join(keys), b"".join(states))

    positions, previous = rows.match(
        _chunk(
            [base + b"\x00", b"\x00" * 12, base + b"\x02", base + b"\x01"],
            [b"s2" + b"\x00" * 6, b"\x00" * 7 + b"\x01", b"x" * 8, b"s1" + b"\x00" * 6],
        )
    )

    # Unchanged: position 0 (row 2) and 3 (row 1). Changed: 1 (row 3). New: 2.
    assert (positions, previous) == ([1, 2], [True, False])
    assert rows.unmatched() == [b"\xff" * 12]


def test_open_rows_in_memory_with_no_rows_find_every_node_new() -> None:

    rows = snapshots._OpenRows(b"", b"")

    assert rows.match(_chunk([b"a" * 12, b"b" * 12], [b"s" * 8, b"t" * 8])) == (
        [0, 1],
        [False, False],
    )
    assert rows.unmatched() == []
