"""The shared file helpers: one cache for everything, atomic writes, checksums."""

from __future__ import annotations

import hashlib

import pytest

from ganforge.core.files import atomic_path, cache_dir, sha256_of, write_atomic_text


def test_datasets_downloads_features_and_the_fid_network_share_one_cache(tmp_path, monkeypatch):
    """XDG_CACHE_HOME moves every cached thing together (it once moved only the datasets)."""
    from ganforge.data.fetch import downloads_dir
    from ganforge.data.sources import datasets_dir
    from ganforge.eval import interfaces
    from ganforge_metrics import inception

    monkeypatch.delenv("GANFORGE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "xdg" / "ganforge"
    assert cache_dir() == root == interfaces.cache_dir()
    assert datasets_dir().parent == root and downloads_dir().parent == root
    assert inception.cached_file().parent.parent == root
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" == datasets_dir().parent


def test_an_atomic_write_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png" and not target.exists()
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"whole"  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["plot.png"]  # and no temporary is left


def test_text_and_checksums(tmp_path):
    path = tmp_path / "best"
    write_atomic_text(path, "step-00000010\n")
    assert path.read_text() == "step-00000010\n"
    assert sha256_of(path) == hashlib.sha256(b"step-00000010\n").hexdigest()
