"""zkdrift: keep Apache ZooKeeper configuration trees honest."""

__version__ = "0.1.0"
