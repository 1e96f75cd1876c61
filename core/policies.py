"""Policy documents: the platform-editable text the reasoning model judges against.

A policy lives in ``<policies_dir>/<version>.md`` (default ``<repo>/policies``). Loading is cached by
file path, modification time and size, so an edited policy takes effect on the next case without a
restart, while unchanged files are read once. Every ``PolicyDoc`` carries the SHA-256 of the exact text,
so a verdict can always be traced to the words it was judged against even if the file changes later.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_POLICIES_DIR", "NO_CLAUSE", "PolicyDoc", "PolicyNotFoundError", "available_versions", "load_policy"]

DEFAULT_POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"

# Versions become file names: refuse anything that could escape the policies directory.
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# A clause is declared as a bold id at the start of a line: ``**H1 Targeted insults** ...``.
_CLAUSE_RE = re.compile(r"^\*\*([A-Z][A-Z0-9]*[0-9])\b", re.MULTILINE)
NO_CLAUSE = "NONE"  # what a verdict cites when no clause applies


@dataclass(frozen=True, slots=True)
class PolicyDoc:
    version: str
    text: str
    sha256: str

    @property
    def clause_ids(self) -> list[str]:
        """The clause ids the document declares, plus ``NONE``: the only values a verdict may cite."""
        return [*dict.fromkeys(_CLAUSE_RE.findall(self.text)), NO_CLAUSE]


class PolicyNotFoundError(LookupError):
    """The requested policy version has no file; the message lists the versions that do."""


_cache: dict[tuple[Path, int, int], PolicyDoc] = {}
_cache_lock = threading.Lock()


def available_versions(policies_dir: Path | None = None) -> list[str]:
    """Versions present in ``policies_dir``, sorted; empty if the directory does not exist."""
    directory = policies_dir or DEFAULT_POLICIES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.md") if _VERSION_RE.match(p.stem))


def load_policy(version: str, policies_dir: Path | None = None) -> PolicyDoc:
    """Return the policy ``version`` from ``policies_dir`` (default ``<repo>/policies``).

    Raises ``PolicyNotFoundError`` naming the available versions when the file is missing or the
    version is not a plain file name, so a typo in ``PolicyConfig.version`` is obvious from the error.
    """
    directory = policies_dir or DEFAULT_POLICIES_DIR
    path = directory / f"{version}.md"
    if not _VERSION_RE.match(version) or not path.is_file():
        known = ", ".join(available_versions(directory)) or "none"
        raise PolicyNotFoundError(
            f"policy version {version!r} not found in {directory} (available: {known}); "
            f"add {version}.md there or set the policy version to one of the available ones"
        )
    stat = path.stat()
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    text = path.read_text(encoding="utf-8")
    doc = PolicyDoc(version=version, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    with _cache_lock:
        # Drop older revisions of the same file so an often-edited policy does not grow the cache.
        for stale in [k for k in _cache if k[0] == key[0]]:
            del _cache[stale]
        _cache[key] = doc
    return doc
