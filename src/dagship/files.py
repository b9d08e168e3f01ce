"""Writing a file so that readers see the old content or the new one, never half of it.

The one helper for "write a temporary file next to the target, then ``os.replace`` it into
place"; every package may use it (docs/architecture.md). It imports nothing of dagship. Also
the one rule for where dagship's caches live (``cache_dir``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where dagship keeps what it can rebuild: ``$DAGSHIP_CACHE_DIR``, else ~/.cache/dagship."""
    configured = os.environ.get("DAGSHIP_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dagship"


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644, fsync: bool = False
) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), created with ``mode``.

    The temporary file is in the same folder, so the final rename is atomic; with ``fsync``
    the content is on disk before the rename (for state that must survive a power cut).
    """
    # Imported here: ``cache_dir`` is on the CLI's start path (``--help`` from its cache), and
    # tempfile alone would add ~10 ms to it.
    import contextlib
    import tempfile

    target = Path(path)
    content = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
