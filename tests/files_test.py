"""dagship.files.write_atomic: all or nothing, with the asked mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dagship.files import write_atomic


def test_writes_text_and_bytes_with_mode(tmp_path: Path) -> None:
    target = tmp_path / "token"
    write_atomic(target, "secret\n", mode=0o600)
    assert target.read_text() == "secret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(target, b"\x00\x01", fsync=True)
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["token"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")

    class Boom(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_atomic(target, Boom("new"))
    # The rename fails (a folder is in the way) after the temporary file was written.
    folder = tmp_path / "folder"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        write_atomic(folder, "x")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["folder", "state.json"]
