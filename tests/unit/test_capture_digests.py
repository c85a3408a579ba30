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

    prepared = snapshots._prepare(nodes)

    assert [p[:3] for p in prepared] == [n[:3] for n in nodes]
    for (path, data, wire, node_acl), (_p, _d, _s, pd, dd, sd, acl_json) in zip(
        nodes, prepared, strict=True
    ):
        assert pd == path_key(path) and len(pd) == 12
        assert dd == value_key(data)
        assert sd == snapshots.wire_state_key(dd.hex(), wire, node_acl)
        assert acl_json == snapshots.acl_to_json(node_acl)
