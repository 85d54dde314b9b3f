"""The registry's private files are its own: checked at every start.

``registry init`` creates the directory 0700 and every file that is not
public 0600: ``registry.toml`` (it may hold the database password), the keys,
the TLS private key, the first administrator's credential and the SQLite
database. :func:`check_private_files` refuses to serve when any of them (or a
directory holding them) can be read or entered by the group or by others,
naming the file and the ``chmod`` that fixes it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from clearance.errors import StorageError
from clearance.tls import TlsFiles
from registry.config import CONFIG_NAME, RegistryConfig

DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_paths(config: RegistryConfig) -> tuple[list[Path], list[Path]]:
    """(directories, files) that must be the owner's alone, as far as they exist."""
    directory = config.directory
    folders = [directory, config.keys_dir, config.tls_dir]
    files = [directory / CONFIG_NAME, directory / "admin.json", TlsFiles.in_dir(config.tls_dir).key]
    if config.keys_dir.is_dir():
        files.extend(sorted(p for p in config.keys_dir.iterdir() if p.is_file()))
    database = sqlite_path(config.database_url)
    if database is not None:
        files.extend(database.with_name(database.name + suffix) for suffix in DATABASE_SUFFIXES)
    return folders, files


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for memory databases and other engines)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def check_private_files(config: RegistryConfig) -> None:
    """Refuse to start when a private file or its directory is open to others.

    Raises:
        StorageError: names the first such path and the command that fixes it.
    """
    folders, files = private_paths(config)
    for folder in folders:
        if folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) & 0o077:
            mode = stat.S_IMODE(folder.stat().st_mode)
            raise StorageError(
                f"{folder} is open to other users (mode {mode:o}); it holds private files: run: chmod 700 {folder}"
            )
    for path in files:
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            mode = stat.S_IMODE(path.stat().st_mode)
            raise StorageError(f"{path} is readable by other users (mode {mode:o}): run: chmod 600 {path}")
