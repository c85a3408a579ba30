"""Generate, load, read back and mutate realistic ZooKeeper configuration trees.

A tree is a ``dict[str, bytes]`` from a path *relative to the tree root* (always starting
with ``/``, e.g. ``/billing-api/prod/database/pool``) to the znode's data. Every
parent of a path is itself a key, so a tree can be created parents-first.

Shape: ``/<service>/<environment>/<group>/<key>``, with JSON leaf values of 140-500
bytes (90% within 190-400), small JSON metadata on service and environment nodes, empty group nodes,
and a few binary leaves (key material, serialized blobs) that are not valid UTF-8.
Everything is derived from a seed, so two runs produce identical bytes.

    python -m bench.treegen            # generate, load into a throwaway ZooKeeper, time it
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, RolledBackError

DEFAULT_SEED = 20240601
DEFAULT_WINDOW = 2000  # outstanding pipelined reads
DEFAULT_BATCH_OPS = 500  # ops per transaction
DEFAULT_BATCH_BYTES = 512 * 1024  # well under jute.maxbuffer (1 MiB)
DEFAULT_OUTSTANDING = 16  # transactions in flight

_SERVICE_WORDS = (
    "billing", "checkout", "catalog", "search", "payments", "ledger", "identity",
    "notifications", "inventory", "pricing", "shipping", "reviews", "recommendations",
    "fraud", "reporting", "gateway", "sessions", "profiles", "media", "analytics",
)  # fmt: skip
_SERVICE_KINDS = ("api", "worker", "indexer", "scheduler", "consumer", "cache")
_ENVIRONMENTS = (
    "prod", "staging", "qa", "dev", "perf", "canary", "dr", "sandbox", "eu-prod", "us-prod",
)  # fmt: skip
_GROUPS = ("database", "cache", "http", "kafka", "features", "logging", "limits", "security")
_GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "database": ("primary", "replica", "pool", "migrations", "timeouts", "failover"),
    "cache": ("redis", "ttl", "eviction", "warmup", "local"),
    "http": ("server", "client", "cors", "retries", "circuit_breaker", "tls"),
    "kafka": ("producer", "consumer", "topics", "schema_registry"),
    "features": ("flag", "rollout", "experiment"),
    "logging": ("level", "sinks", "sampling", "audit"),
    "limits": ("rate", "quota", "concurrency", "payload"),
    "security": ("keystore", "truststore", "oauth", "secrets_ref"),
}
# One leaf in this many is binary (when it is not JSON config, it is key material).
_BINARY_EVERY = 400


@dataclass(frozen=True)
class TreeDiff:
    """How two trees differ, counted the way zk-shell's ``diff`` lists them."""

    changed: tuple[str, ...]  # in both, different bytes  ("-+" in zk-shell)
    removed: tuple[str, ...]  # in a only                 ("--")
    added: tuple[str, ...]  # in b only                   ("++")

    @property
    def total(self) -> int:
        return len(self.changed) + len(self.removed) + len(self.added)


def service_names(count: int) -> list[str]:
    names = [f"{w}-{k}" for k in _SERVICE_KINDS for w in _SERVICE_WORDS]
    if count <= len(names):
        return names[:count]
    return names + [f"service-{i:04d}" for i in range(len(names), count)]


def environment_names(count: int) -> list[str]:
    if count <= len(_ENVIRONMENTS):
        return list(_ENVIRONMENTS[:count])
    return list(_ENVIRONMENTS) + [f"env-{i:03d}" for i in range(len(_ENVIRONMENTS), count)]


def _key_names(keys: int) -> list[tuple[str, str]]:
    """``keys`` (group, key) pairs spread over the groups, names unique within a group."""
    out: list[tuple[str, str]] = []
    i = 0
    while len(out) < keys:
        group = _GROUPS[i % len(_GROUPS)]
        stems = _GROUP_KEYS[group]
        n = i // len(_GROUPS)
        stem = stems[n % len(stems)]
        suffix = n // len(stems)
        out.append((group, stem if suffix == 0 else f"{stem}_{suffix}"))
        i += 1
    return out


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _leaf_value(rng: random.Random, service: str, env: str, group: str, key: str) -> bytes:
    host = f"{service}.{env}.internal"
    doc: dict[str, Any] = {
        "key": f"{group}.{key}",
        "owner": f"team-{service.split('-')[0]}",
        "enabled": rng.random() < 0.9,
        "updated_by": rng.choice(("deploy-bot", "alice", "bob", "carol", "terraform")),
        "revision": rng.randint(1, 5000),
    }
    if group in ("database", "cache", "kafka"):
        doc["endpoints"] = [
            f"{host}-{i}:{rng.choice((5432, 6379, 9092, 3306))}" for i in range(rng.randint(1, 4))
        ]
        doc["timeout_ms"] = rng.choice((250, 500, 1000, 2000, 5000))
        doc["pool"] = {"min": rng.randint(1, 4), "max": rng.randint(8, 128)}
    elif group in ("http", "limits"):
        doc["limits"] = {
            "rps": rng.randint(10, 50_000),
            "burst": rng.randint(1, 500),
            "window_s": rng.choice((1, 10, 60)),
        }
        doc["paths"] = [f"/v{rng.randint(1, 3)}/{key}/{i}" for i in range(rng.randint(0, 5))]
    elif group == "features":
        doc["rollout_percent"] = rng.randint(0, 100)
        doc["segments"] = rng.sample(
            ["beta", "internal", "eu", "us", "mobile", "web", "enterprise", "free"],
            k=rng.randint(0, 5),
        )
    else:
        doc["level"] = rng.choice(("DEBUG", "INFO", "WARN", "ERROR"))
        doc["targets"] = [f"{host}:{rng.randint(1024, 65535)}" for _ in range(rng.randint(0, 3))]
    doc["comment"] = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz ", k=rng.randint(0, 120)))
    return _json(doc)


def _binary_value(rng: random.Random) -> bytes:
    # A DER-ish header, then random bytes: not valid UTF-8, so it exercises raw byte handling.
    body = rng.randbytes(rng.randint(64, 1024))
    return b"\x30\x82" + len(body).to_bytes(2, "big") + b"\xff\x00" + body


def generate_tree(
    services: int = 40,
    environments: int = 5,
    keys: int = 92,
    seed: int = DEFAULT_SEED,
) -> dict[str, bytes]:
    """A deterministic config tree; the defaults give 20,240 znodes (18,400 leaves).

    Nodes: ``services`` service nodes, ``services * environments`` environment nodes,
    one group node per used group per environment, and ``keys`` leaves per environment.
    """
    rng = random.Random(seed)
    pairs = _key_names(keys)
    groups = sorted({g for g, _ in pairs}, key=_GROUPS.index)
    nodes: dict[str, bytes] = {}
    leaf_no = 0
    for service in service_names(services):
        nodes[f"/{service}"] = _json(
            {"service": service, "tier": rng.randint(0, 3), "oncall": f"team-{service}"}
        )
        for env in environment_names(environments):
            env_path = f"/{service}/{env}"
            nodes[env_path] = _json({"environment": env, "region": rng.choice(("eu", "us"))})
            for group in groups:
                nodes[f"{env_path}/{group}"] = b""
            for group, key in pairs:
                leaf_no += 1
                if leaf_no % _BINARY_EVERY == 0:
                    value = _binary_value(rng)
                else:
                    value = _leaf_value(rng, service, env, group, key)
                nodes[f"{env_path}/{group}/{key}"] = value
    return nodes


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def join(root: str, rel: str) -> str:
    """Absolute path of tree-relative ``rel`` under ``root`` (``root`` may be ``/``)."""
    root = root.rstrip("/")
    return (root + rel) if rel != "/" else (root or "/")


class LoadError(RuntimeError):
    """A batched create or delete failed."""


def _check_batch(result: Any, first_path: str) -> None:
    try:
        outcomes = result.get()
    except Exception as exc:
        raise LoadError(f"transaction starting at {first_path} failed: {exc!r}") from exc
    # A failed multi returns one outcome per op: the culprit's error, and
    # RolledBackError for the rest.
    errors = [o for o in outcomes if isinstance(o, Exception)]
    if errors:
        culprit = next((e for e in errors if not isinstance(e, RolledBackError)), errors[0])
        raise LoadError(f"transaction starting at {first_path} failed: {culprit!r}")


def _run_batched(
    client: KazooClient,
    ops: Iterable[tuple[str, str, bytes]],
    batch_ops: int,
    batch_bytes: int,
    outstanding: int,
) -> int:
    """Send ``(kind, path, data)`` ops as transactions, several in flight; returns op count.

    One session's requests are handled in order, so an op may depend on any op sent
    before it (a parent created, a child deleted) even if that op's reply is pending.
    """
    pending: deque[tuple[Any, str]] = deque()  # (async result, first path of the batch)
    txn = client.transaction()
    first = ""
    n_ops = size = total = 0

    def flush() -> None:
        nonlocal txn, n_ops, size
        if n_ops:
            pending.append((txn.commit_async(), first))
            txn, n_ops, size = client.transaction(), 0, 0
        while len(pending) > outstanding:
            _check_batch(*pending.popleft())

    for kind, path, data in ops:
        cost = len(path) + len(data) + 64
        if n_ops and (n_ops >= batch_ops or size + cost > batch_bytes):
            flush()
        if n_ops == 0:
            first = path
        if kind == "create":
            txn.create(path, data)
        else:
            txn.delete(path)
        n_ops, size, total = n_ops + 1, size + cost, total + 1
    flush()
    while pending:
        _check_batch(*pending.popleft())
    return total


def load_tree(
    client: KazooClient,
    root: str,
    nodes: Mapping[str, bytes],
    batch_ops: int = DEFAULT_BATCH_OPS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    outstanding: int = DEFAULT_OUTSTANDING,
) -> int:
    """Create ``nodes`` under ``root`` (made with its parents if missing); returns count.

    Creates go in transactions of at most ``batch_ops`` ops and ``batch_bytes`` bytes
    (well under ``jute.maxbuffer``), with up to ``outstanding`` transactions in flight.
    That is over ten times faster than one ``create_async`` per node with kazoo, whose
    connection loop handles one request per turn. Paths are sent sorted, which puts
    every parent before its children. Raises ``LoadError`` on the first failure (for
    instance a node that already exists); earlier transactions stay committed.
    """
    missing = [p for p in nodes if p != "/" and parent_of(p) != "/" and parent_of(p) not in nodes]
    if missing:
        raise ValueError(f"tree has nodes without parents, e.g. {missing[0]}")
    client.ensure_path(root)
    if "/" in nodes:
        client.set(root, nodes["/"])
    ops = (("create", join(root, rel), nodes[rel]) for rel in sorted(nodes) if rel != "/")
    return _run_batched(client, ops, batch_ops, batch_bytes, outstanding)


def read_tree(client: KazooClient, root: str, window: int = DEFAULT_WINDOW) -> dict[str, bytes]:
    """Read every node under ``root`` (not ``root`` itself) as a tree-relative mapping.

    Pipelined ``get_async`` over one session, with ``get_children_async`` only for nodes
    whose ``numChildren > 0``; a node deleted mid-walk is skipped, not an error.
    """
    root = root.rstrip("/") or "/"
    offset = 0 if root == "/" else len(root)
    out: dict[str, bytes] = {}
    todo: deque[str] = deque(join(root, "/" + c) for c in client.get_children(root))
    pending: deque[tuple[bool, str, Any]] = deque()  # (is_children_request, path, result)
    while todo or pending:
        while todo and len(pending) < window:
            path = todo.popleft()
            pending.append((False, path, client.get_async(path)))
        is_children, path, result = pending.popleft()
        try:
            value = result.get()
        except NoNodeError:
            continue
        if is_children:
            todo.extend(f"{path}/{c}" for c in value)
            continue
        data, stat = value
        out[path[offset:]] = data
        if stat.numChildren > 0:
            pending.append((True, path, client.get_children_async(path)))
    return out


def delete_tree(
    client: KazooClient,
    root: str,
    batch_ops: int = DEFAULT_BATCH_OPS,
    outstanding: int = DEFAULT_OUTSTANDING,
) -> int:
    """Delete ``root`` and everything under it, children first, batched; returns count."""
    if not client.exists(root):
        return 0
    nodes = read_tree(client, root)
    # Reverse sorted order puts every child before its parent.
    paths = sorted((join(root, rel) for rel in nodes), reverse=True)
    if root.rstrip("/"):
        paths.append(root)
    ops = (("delete", p, b"") for p in paths)
    return _run_batched(client, ops, batch_ops, DEFAULT_BATCH_BYTES, outstanding)


def compare_trees(a: Mapping[str, bytes], b: Mapping[str, bytes]) -> TreeDiff:
    """Differences from ``a`` to ``b`` (tree-relative paths)."""
    return TreeDiff(
        changed=tuple(sorted(p for p in a.keys() & b.keys() if a[p] != b[p])),
        removed=tuple(sorted(a.keys() - b.keys())),
        added=tuple(sorted(b.keys() - a.keys())),
    )


def mutate(
    nodes: Mapping[str, bytes],
    n_sets: int = 1000,
    n_creates: int = 400,
    delete_subtree: str | bool = True,
    seed: int = DEFAULT_SEED + 1,
) -> dict[str, bytes]:
    """A changed copy of ``nodes``: ``n_sets`` leaves rewritten, ``n_creates`` new leaves,
    and one subtree deleted.

    ``delete_subtree``: a tree-relative path to delete with everything under it, ``True``
    to pick one environment subtree (about a hundred nodes), or ``False`` for none.
    With the default tree and arguments this makes about 1,500 differences.
    """
    rng = random.Random(seed)
    out = dict(nodes)
    if delete_subtree is True:
        envs = sorted(p for p in nodes if p.count("/") == 2)
        delete_subtree = rng.choice(envs) if envs else False
    if delete_subtree:
        doomed = str(delete_subtree).rstrip("/")
        if doomed not in out:
            raise KeyError(f"no such subtree: {doomed}")
        for path in [p for p in out if p == doomed or p.startswith(doomed + "/")]:
            del out[path]

    leaves = sorted(p for p in out if p.count("/") == 4)
    if n_sets > len(leaves):
        raise ValueError(f"asked for {n_sets} sets but the tree has {len(leaves)} leaves")
    for path in rng.sample(leaves, n_sets):
        old = out[path]
        try:
            doc = json.loads(old)
        except (UnicodeDecodeError, ValueError):
            out[path] = old[:-8] + rng.randbytes(8)  # binary: flip the tail
            continue
        doc["revision"] = int(doc.get("revision", 0)) + 1
        doc["updated_by"] = "drift"
        doc["enabled"] = not doc.get("enabled", True)
        out[path] = _json(doc)

    groups = sorted(p for p in out if p.count("/") == 3)
    for i in range(n_creates):
        group = rng.choice(groups)
        path = f"{group}/added_{i:05d}"
        out[path] = _json(
            {"key": path.rsplit("/", 2)[-2] + f".added_{i}", "added": True, "value": rng.random()}
        )
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.common import arg_parser, kazoo_client, timed, zookeeper_hosts

    parser = arg_parser("Generate a config tree, load it into ZooKeeper and time the load")
    parser.add_argument("--batch-ops", type=int, default=DEFAULT_BATCH_OPS)
    args = parser.parse_args(argv)
    with timed() as t_gen:
        nodes = generate_tree(args.services, args.environments, args.keys, args.seed)
    sizes = sorted(len(v) for v in nodes.values() if v)
    changed = mutate(nodes)
    diff = compare_trees(nodes, changed)
    print(
        f"generated {len(nodes)} znodes in {t_gen.seconds:.2f}s; "
        f"value bytes median {sizes[len(sizes) // 2]}, max {sizes[-1]}, "
        f"total {sum(sizes) / 1e6:.1f} MB"
    )
    print(
        f"mutate(): {diff.total} differences "
        f"({len(diff.changed)} changed, {len(diff.added)} added, {len(diff.removed)} removed)"
    )
    with zookeeper_hosts(args.hosts) as hosts, kazoo_client(hosts) as client:
        root = "/bench-treegen"
        if client.exists(root):
            delete_tree(client, root)
        with timed() as t_load:
            load_tree(client, root, nodes, batch_ops=args.batch_ops)
        with timed() as t_read:
            back = read_tree(client, root)
        if back != nodes:
            raise SystemExit("read back a different tree than was loaded")
        with timed() as t_del:
            delete_tree(client, root)
        print(
            f"load_tree: {len(nodes)} znodes in {t_load.seconds:.2f}s "
            f"({len(nodes) / t_load.seconds:,.0f}/s); read_tree {t_read.seconds:.2f}s; "
            f"delete_tree {t_del.seconds:.2f}s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
