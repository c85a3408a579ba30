"""Reading a desired state's source from a Git repository, through the ``git`` command.

Why the ``git`` CLI and not a library: it speaks every transport and login
teams already use with their repositories (SSH agents and keys, credential
helpers, proxies, ``insteadOf`` rewrites, corporate CA bundles) exactly as
their own ``git`` does, it is maintained by the Git project itself, and
Debian ships it. GitPython is a wrapper around the same CLI (with a record
of option-injection bugs in how it builds command lines); pygit2 needs
libgit2, whose SSH and proxy support depends on how the wheel was built;
dulwich is pure Python but does not read git's credential helpers or
``http.*`` settings. Nothing here runs a shell: every command line is a
list, and every value from a tree's setting follows ``--`` or is a
validated ref.

A repository may be hostile (anyone who can push to it can shape it), so

- it is fetched into a fresh bare repository in a temporary directory,
  shallow (``--depth 1``), never checked out: no hooks run (there are none,
  and ``core.hooksPath`` points at nothing), no filter or checkout
  attributes apply, and ``transfer.fsckObjects`` refuses malformed objects
  (tree entries named ``..`` or ``.git``);
- the files under the source path are listed with their sizes first and
  refused by size before any is read (the limit ``desired import`` uses
  for a directory); submodules are refused;
- the listed files are written into a directory of our own, symbolic links
  as links, which :func:`zkdrift.formats.load_desired` then reads with the
  rules of ``desired import`` for a directory (a link leaving the directory
  is refused without being followed);
- every command has a time limit, asks for no password on a terminal
  (``GIT_TERMINAL_PROMPT=0``), and its messages are scrubbed of the URL's
  credentials before anyone sees them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zkdrift.errors import InvalidInputError
from zkdrift.policy import MASK, DesiredSource, url_credentials

# Where the fetched commit is kept inside the temporary repository.
_SOURCE_REF = "refs/zkdrift/source"
# Inherited GIT_* variables that only say how to reach and log in to a remote.
# Everything else (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, GIT_TRACE*, ...) could
# point git somewhere else or print credentials, and is dropped.
_KEPT_GIT_VARIABLES = frozenset(
    {
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_ASKPASS",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_HTTP_LOW_SPEED_LIMIT",
        "GIT_HTTP_LOW_SPEED_TIME",
    }
)
# Settings for every command: no hooks, no submodules, objects checked as they arrive,
# no transport that runs commands.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.symlinks=true",
    "protocol.ext.allow=never",
    "protocol.fd.allow=never",
    "fetch.recurseSubmodules=false",
    "transfer.fsckObjects=true",
    "fetch.fsckObjects=true",
    "advice.detachedHead=false",
)
# What talks to the remote: its failures are the repository's (or the network's) to fix.
_REMOTE_STEPS = ("cannot reach", "cannot fetch")
# Larger than any ZooKeeper database: a repository path that holds more is not configuration.
MAX_ENTRIES = 2_000_000
MAX_TOTAL_BYTES = 2 * 1024**3
# A symbolic link's target longer than this is no path.
_MAX_LINK_BYTES = 4096
_CHUNK = 1024 * 1024


class GitSourceError(InvalidInputError):
    """The source could not be fetched or read; the message is one line, credentials masked."""


class GitUnreachableError(GitSourceError):
    """The repository did not answer (network, login, time limit): worth another try."""


@dataclass(frozen=True)
class Commit:
    """The commit a desired state was read from."""

    sha: str
    author: str  # "Name <email>"
    message: str
    committed_at: dt.datetime  # naive UTC

    @property
    def short(self) -> str:
        return self.sha[:12]

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True)
class Fetched:
    """A fetched source: its commit, and the file or directory to import."""

    commit: Commit
    content: Path
    # How ``content`` is named to people: ``<sha12>:<path in the repository>``.
    shown: str

    def name(self, local: str) -> str:
        """A file name under ``content`` as people should read it."""
        root = str(self.content)
        if not local.startswith(root):
            return local
        rest = local[len(root) :]
        return self.shown + (rest.lstrip("/") if self.shown.endswith(":") else rest)


def git_available() -> bool:
    return shutil.which("git") is not None


class _Git:
    """Runs ``git`` for one source: safe settings, a clean environment, scrubbed messages."""

    def __init__(self, source: DesiredSource, *, timeout: float, git_dir: Path | None = None):
        self.source = source
        self.timeout = timeout
        self.git_dir = git_dir
        self._secrets = url_credentials(source.url)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GIT_") or k in _KEPT_GIT_VARIABLES
        }
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_LITERAL_PATHSPECS="1",
            GIT_CONFIG_PARAMETERS="",  # no '-c' settings smuggled in through the environment
            LC_ALL="C",
        )
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        self.env = env

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = ["git"]
        for setting in _SAFE_CONFIG:
            argv += ["-c", setting]
        if self.git_dir is not None:
            argv.append(f"--git-dir={self.git_dir}")
        return [*argv, *args]

    def _failure(self, what: str, detail: str) -> GitSourceError:
        lines = [line.strip() for line in self.scrub(detail).splitlines() if line.strip()]
        # git's last "fatal:" line says what went wrong; hints and progress do not.
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        reason = (fatal or lines or ["no message"])[-1]
        return GitSourceError(f"{what} {self.source.describe()}: {reason}")

    def run(self, what: str, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            proc = subprocess.run(
                self._argv(args),
                input=stdin,
                capture_output=True,
                env=self.env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise GitSourceError(
                "the 'git' command is not installed; install it (apt-get install git) to "
                "sync desired state from a repository"
            ) from None
        except subprocess.TimeoutExpired:
            raise GitUnreachableError(
                f"{what} {self.source.describe()}: no answer within {self.timeout:g} s"
                " (ZKDRIFT_GIT_TIMEOUT)"
            ) from None
        if proc.returncode != 0:
            error = self._failure(what, proc.stderr.decode("utf-8", "replace"))
            if what in _REMOTE_STEPS:
                raise GitUnreachableError(str(error))
            raise error
        return proc.stdout

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._argv(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )


def _candidates(ref: str) -> list[str]:
    if ref.startswith("refs/"):
        return [ref]
    return [f"refs/heads/{ref}", f"refs/tags/{ref}"]


def _resolve(git: _Git) -> tuple[str, str]:
    """The full name of the source's branch or tag on the remote and the commit it
    points at now (one ``git ls-remote``)."""
    source = git.source
    wanted = _candidates(source.ref)
    out = git.run("cannot reach", "ls-remote", "--", source.url, *wanted).decode("utf-8", "replace")
    refs: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    found = [name for name in wanted if name in refs]
    if not found:
        raise GitSourceError(
            f"{source.describe()}: the repository has no branch or tag {source.ref!r}"
        )
    if len(found) > 1:
        raise GitSourceError(
            f"{source.describe()}: {source.ref!r} is both a branch and a tag; write "
            f"ref=refs/heads/{source.ref} or ref=refs/tags/{source.ref}"
        )
    name = found[0]
    # An annotated tag: the commit is what it peels to.
    return name, refs.get(f"{name}^{{}}", refs[name])


def remote_commit(source: DesiredSource, *, timeout: float) -> str:
    """The commit the source's branch or tag points at now, without fetching anything."""
    return _resolve(_Git(source, timeout=timeout))[1]


def _commit_info(git: _Git) -> Commit:
    raw = git.run(
        "cannot read the commit of",
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H%x00%an <%ae>%x00%ct%x00%B",
        f"{_SOURCE_REF}^{{commit}}",
        "--",
    ).decode("utf-8", "replace")
    sha, author, when, message = raw.split("\x00", 3)
    return Commit(
        sha=sha.strip(),
        author=author.strip(),
        message=message.strip(),
        committed_at=dt.datetime.fromtimestamp(int(when), dt.UTC).replace(tzinfo=None),
    )


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str
    sha: str
    size: int
    path: str  # relative to the source path


def _list(git: _Git, treeish: str, recursive: bool) -> list[_Entry]:
    args = ["ls-tree", "-z", "--long", "--full-tree"]
    if recursive:
        args.append("-r")
    out = git.run("cannot list", *args, treeish, "--")
    entries: list[_Entry] = []
    for record in out.split(b"\x00"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        entries.append(
            _Entry(
                mode=mode,
                kind=kind,
                sha=sha,
                size=0 if size == "-" else int(size),
                path=name.decode("utf-8", "surrogateescape"),
            )
        )
        if len(entries) > MAX_ENTRIES:
            raise GitSourceError(
                f"{git.source.describe()}: more than {MAX_ENTRIES:,} files under the source path"
            )
    return entries


def _source_entry(git: _Git, commit: Commit) -> _Entry | None:
    """The source path's own entry (None for the repository's top)."""
    path = git.source.path
    if not path:
        return None
    parent, _, name = path.rpartition("/")
    treeish = f"{commit.sha}:{parent}" if parent else f"{commit.sha}^{{tree}}"
    try:
        listing = _list(git, treeish, recursive=False)
    except GitSourceError:
        listing = []
    for entry in listing:
        if entry.path == name:
            return entry
    raise GitSourceError(
        f"{git.source.describe()}: {path!r} does not exist at commit {commit.short}"
    )


def _check(git: _Git, entries: Sequence[_Entry], max_file_bytes: int, shown: str) -> None:
    total = 0
    for entry in entries:
        where = f"{shown}{entry.path}"
        if entry.mode == "160000":
            raise GitSourceError(f"{where}: a submodule; a desired source holds files only")
        if entry.kind != "blob":
            raise GitSourceError(f"{where}: not a file ({entry.kind})")
        if entry.mode == "120000":
            if entry.size > _MAX_LINK_BYTES:
                raise GitSourceError(f"{where}: a symbolic link to an impossibly long path")
        elif entry.size > max_file_bytes:
            raise GitSourceError(
                f"{where}: file is larger than {max_file_bytes:,} bytes, the largest value one "
                "ZooKeeper request carries"
            )
        total += entry.size
        if total > MAX_TOTAL_BYTES:
            raise GitSourceError(
                f"{git.source.describe()}: the files under the source path hold more than "
                f"{MAX_TOTAL_BYTES:,} bytes"
            )
        parts = entry.path.split("/")
        if any(p in ("", ".", "..") or "\x00" in p for p in parts):
            raise GitSourceError(f"{where}: not a usable file name")


def _write_blobs(git: _Git, entries: Sequence[_Entry], dest: Path) -> None:
    """Write each entry's content under ``dest`` (links as links), streaming
    ``git cat-file --batch``; sizes were checked before anything is read."""
    files = {e.path for e in entries}
    for entry in entries:
        # A file that is also a directory of another entry: a malformed tree.
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise GitSourceError(f"{entry.path}: a file and a directory at once")
    proc = git.popen("cat-file", "--batch")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"".join(e.sha.encode("ascii") + b"\n" for e in entries))
        proc.stdin.close()
        for entry in entries:
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise GitSourceError(f"{entry.path}: cannot be read from the repository")
            size = int(header[2])
            if size != entry.size:
                raise GitSourceError(f"{entry.path}: its size changed while being read")
            target = dest.joinpath(*entry.path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.mode == "120000":
                link = proc.stdout.read(size)
                os.symlink(os.fsdecode(link), target)
            else:
                with open(target, "xb") as out:
                    left = size
                    while left:
                        chunk = proc.stdout.read(min(left, _CHUNK))
                        if not chunk:
                            raise GitSourceError(f"{entry.path}: the content ended early")
                        out.write(chunk)
                        left -= len(chunk)
            proc.stdout.read(1)  # the newline after each object
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=git.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def fetch_source(
    source: DesiredSource, *, timeout: float, max_file_bytes: int
) -> Iterator[Fetched]:
    """Fetch the source's branch or tag and lay out the files under its path in a
    temporary directory, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="zkdrift-git-") as tmp:
        top = Path(tmp)
        repo = top / "repo.git"
        git = _Git(source, timeout=timeout)
        git.run(
            "cannot prepare a repository for", "init", "--quiet", "--bare", "--template=", str(repo)
        )
        git = _Git(source, timeout=timeout, git_dir=repo)
        ref, _sha = _resolve(git)
        git.run(
            "cannot fetch",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--depth=1",
            "--",
            source.url,
            f"+{ref}:{_SOURCE_REF}",
        )
        commit = _commit_info(git)
        own = _source_entry(git, commit)
        shown = f"{commit.short}:{source.path + '/' if source.path else ''}"
        content = top / "content"
        content.mkdir()
        if own is not None and own.kind == "blob":
            if own.mode == "120000":
                raise GitSourceError(
                    f"{commit.short}:{source.path}: a symbolic link; name the file it leads to"
                )
            entries = [_Entry(own.mode, own.kind, own.sha, own.size, own.path)]
            parent = source.path.rpartition("/")[0]
            _check(git, entries, max_file_bytes, f"{commit.short}:{parent + '/' if parent else ''}")
            _write_blobs(git, entries, content)
            yield Fetched(commit, content / own.path, f"{commit.short}:{source.path}")
            return
        if own is not None and own.kind != "tree":
            _check(git, [own], max_file_bytes, shown)  # a submodule: refused, named
        treeish = f"{commit.sha}:{source.path}" if source.path else commit.sha
        entries = _list(git, treeish, recursive=True)
        _check(git, entries, max_file_bytes, shown)
        tree_dir = content / "tree"
        tree_dir.mkdir()
        _write_blobs(git, entries, tree_dir)
        yield Fetched(
            commit, tree_dir, shown.rstrip("/").rstrip(":") + ("" if source.path else ":")
        )
