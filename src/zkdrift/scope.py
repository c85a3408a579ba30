"""What zkdrift manages of a tree: one rule, used by drift, plan, adopt and desired state.

A path is *managed* when it lies under the tree's root, neither it nor an
ancestor matches an exclude glob, it matches an include glob (when the tree
has any), and it is not part of what zkdrift itself writes (its lock root
and the parents of that root inside the tree). Ephemeral nodes belong to
sessions, not to configuration: they are never managed, but a plan must
still see them, since their parents cannot be deleted.

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zkdrift.model import TreeState, Znode
from zkdrift.paths import ancestors, glob_match, is_under, matches_any, parent_of


def _nodes(state: TreeState | Mapping[str, Znode]) -> Mapping[str, Znode]:
    return state.nodes if isinstance(state, TreeState) else state


def reserved_paths(root: str, lock_root: str) -> tuple[str, ...]:
    """The lock root and its ancestors that lie inside the tree (below its root)."""
    if not is_under(lock_root, root) or lock_root == root:
        return ()
    out = [lock_root]
    out.extend(a for a in ancestors(lock_root) if is_under(a, root) and a != root)
    return tuple(out)


@dataclass(frozen=True)
class Scope:
    """The managed part of one tree: its root, excludes, includes and reserved paths.

    ``reserved`` are paths zkdrift writes itself (the lock root, see
    :func:`reserved_paths`): the lock root is left out with its subtree, its
    ancestors inside the tree only as themselves.
    """

    root: str
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    reserved: tuple[str, ...] = ()

    def excluding_glob(self, path: str) -> str | None:
        """The exclude glob that covers ``path`` (itself or an ancestor), if any."""
        for probe in (path, *ancestors(path)):
            for glob in self.excludes:
                if glob_match(probe, glob):
                    return glob
        return None

    def is_reserved(self, path: str) -> bool:
        if not self.reserved:
            return False
        lock_root = self.reserved[0]
        return is_under(path, lock_root) or path in self.reserved

    def managed(self, state: TreeState | Mapping[str, Znode]) -> dict[str, Znode]:
        """The nodes of ``state`` zkdrift manages: what a diff against desired may see.

        Includes are matched on the path itself only, so ``/app/**`` does not
        include ``/app``.
        """
        return self._view(state, keep_ephemeral=False)

    def plan_view(self, state: TreeState | Mapping[str, Znode]) -> dict[str, Znode]:
        """What a plan sees of live: the managed nodes plus ephemeral ones that are
        not excluded (never written, but their parents must stay)."""
        return self._view(state, keep_ephemeral=True)

    def _view(
        self, state: TreeState | Mapping[str, Znode], *, keep_ephemeral: bool
    ) -> dict[str, Znode]:
        # Siblings share ancestors: remember each ancestor's verdict instead of
        # matching it again for every child.
        verdicts: dict[str, bool] = {}
        excludes = self.excludes

        def excluded(path: str) -> bool:
            verdict = verdicts.get(path)
            if verdict is None:
                verdict = matches_any(path, excludes) or (path != "/" and excluded(parent_of(path)))
                verdicts[path] = verdict
            return verdict

        out: dict[str, Znode] = {}
        for path, node in _nodes(state).items():
            if node.ephemeral:
                if not keep_ephemeral:
                    continue
            elif self.includes and not matches_any(path, self.includes):
                continue
            if excludes and excluded(path):
                continue
            if self.reserved and self.is_reserved(path):
                continue
            out[path] = node
        return out

    def path_filter(self, *, keep_ephemeral: bool, cache_size: int = 65536) -> PathFilter:
        """:meth:`managed` (or, with ``keep_ephemeral``, :meth:`plan_view`) for one
        path at a time, for rows streamed from the store."""
        return PathFilter(self, keep_ephemeral=keep_ephemeral, cache_size=cache_size)

    def unmanaged_problem(self, path: str) -> str | None:
        """Why desired state may not hold ``path`` (None when it may)."""
        if not is_under(path, self.root):
            return f"path is outside the root {self.root!r}"
        glob = self.excluding_glob(path)
        if glob is not None:
            return f"path is under the exclude glob {glob!r}, so zkdrift does not manage it"
        if self.is_reserved(path):
            return "path is where zkdrift keeps its own locks"
        if self.includes and not matches_any(path, self.includes):
            return f"path matches none of the include globs ({', '.join(self.includes)})"
        return None


def scope_of(
    root: str, excludes: Sequence[str], includes: Sequence[str], lock_root: str | None = None
) -> Scope:
    return Scope(
        root,
        tuple(excludes),
        tuple(includes),
        reserved_paths(root, lock_root) if lock_root else (),
    )


class PathFilter:
    """The rule of :meth:`Scope.managed` / :meth:`Scope.plan_view`, one path at a time.

    Verdicts on excluded ancestors are remembered, as :meth:`Scope.managed`
    does, but only up to ``cache_size`` of them: a stream of a million
    paths must not grow a million-entry cache.
    """

    def __init__(self, scope: Scope, *, keep_ephemeral: bool, cache_size: int = 65536) -> None:
        self.scope = scope
        self.keep_ephemeral = keep_ephemeral
        self._cache_size = cache_size
        self._verdicts: dict[str, bool] = {}
        self._trivial = not (scope.excludes or scope.includes or scope.reserved)

    @property
    def keeps_every_persistent_node(self) -> bool:
        """True when the scope has no rule that leaves a persistent node out."""
        return self._trivial

    def _excluded(self, path: str) -> bool:
        verdict = self._verdicts.get(path)
        if verdict is None:
            verdict = matches_any(path, self.scope.excludes) or (
                path != "/" and self._excluded(parent_of(path))
            )
            if len(self._verdicts) >= self._cache_size:
                self._verdicts.clear()
            self._verdicts[path] = verdict
        return verdict

    def __call__(self, path: str, ephemeral: bool = False) -> bool:
        """True when the view keeps ``path`` (an ephemeral node when ``ephemeral``)."""
        if ephemeral:
            if not self.keep_ephemeral:
                return False
        elif self._trivial:
            return True
        elif self.scope.includes and not matches_any(path, self.scope.includes):
            return False
        if self.scope.excludes and self._excluded(path):
            return False
        return not (self.scope.reserved and self.scope.is_reserved(path))
