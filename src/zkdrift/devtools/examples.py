"""An example configuration tree, for demos and the docker-compose seed step.

Services x environments x keys, JSON values, a secret or two and a binary
value, the shape of a typical service-settings tree.
"""

from __future__ import annotations

import json

from kazoo.client import KazooClient

SERVICES = ("billing", "checkout", "search", "inventory", "auth", "notifications")
ENVIRONMENTS = ("dev", "staging", "prod")


def example_tree(root: str = "/zkdrift-demo") -> dict[str, bytes]:
    nodes: dict[str, bytes] = {root: b""}
    for service in SERVICES:
        nodes[f"{root}/{service}"] = b""
        for env in ENVIRONMENTS:
            base = f"{root}/{service}/{env}"
            nodes[base] = b""
            replicas = {"dev": 1, "staging": 2, "prod": 6}[env]
            nodes[f"{base}/replicas"] = str(replicas).encode()
            nodes[f"{base}/database"] = json.dumps(
                {"host": f"{service}-db.{env}.internal", "port": 3306, "pool": 4 * replicas}
            ).encode()
            nodes[f"{base}/feature_flags"] = json.dumps(
                {"new_ui": env != "prod", "rate_limit": 100 * replicas}
            ).encode()
            nodes[f"{base}/db_password"] = f"{service}-{env}-s3cret".encode()
            nodes[f"{base}/log_level"] = b"DEBUG" if env == "dev" else b"INFO"
    nodes[f"{root}/search/prod/synonyms.bin"] = bytes(range(256))
    return nodes


def seed(client: KazooClient, nodes: dict[str, bytes], *, overwrite: bool = False) -> int:
    """Create the nodes (parents first); returns how many were created or updated."""
    written = 0
    for path in sorted(nodes, key=lambda p: (p.count("/"), p)):
        if client.exists(path) is None:
            client.create(path, nodes[path], makepath=True)
            written += 1
        elif overwrite:
            client.set(path, nodes[path])
            written += 1
    return written
