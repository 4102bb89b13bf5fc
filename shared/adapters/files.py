"""Files under the data dir that only nudge's user may read: they hold buyers' data and keys.

The SQLite database holds identifiers, hashes and the bus's records; the key files hold
secrets. They are created mode 0600, and a folder nudge creates for them 0700. SQLite
creates a database's ``-wal`` and ``-shm`` files with the database file's own mode, so
creating the database file first, privately, covers them too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["private_dir", "private_sqlite_file"]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by this user only; an existing
    folder keeps its mode (it may be the user's own, chosen with care)."""
    if not path.exists():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def private_sqlite_file(path: Path) -> None:
    """Have the SQLite database ``path`` exist with mode 0600 before SQLite opens it.

    An empty file is a valid empty database. A database (or its ``-wal``/``-shm``) left
    readable by others (earlier versions made them so) is made private.
    """
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
        os.close(descriptor)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if stat.S_IMODE(name.stat().st_mode) & 0o077:
                name.chmod(PRIVATE_FILE)
