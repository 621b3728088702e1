"""``pipelines.freshness.tree_listing``: what a refresh compares to see that the raw tree is
unchanged (``docs/incremental.md``). Links are listed, never followed."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.freshness import _digest, tree_listing


def _walked(root: Path) -> str:
    """The listing as ``os.walk`` gives it (the formulation before ``os.scandir``): the
    listing must stay the same, or every ``OUT`` would refresh once for nothing."""
    entries = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(folder) / name
            stat = path.lstat()
            link = os.readlink(path) if path.is_symlink() else ""
            entries.append(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\t{link}")
    return _digest(entries)


def _tree(root: Path, outside: Path) -> None:
    for folder in ("C01/2026-01-05", "C01/2026-01-12/nested", "C02/2026-01-05", "C10/latest"):
        (root / folder).mkdir(parents=True)
    for name in ("C01/2026-01-05/dm.csv", "C01/2026-01-12/nested/x.csv", "C02/2026-01-05/ae.csv"):
        (root / name).write_text(name)
    (root / "README.md").write_text("notes")
    outside.mkdir()
    (outside / "dm.csv").write_text("outside")
    (root / "C03").symlink_to(outside, target_is_directory=True)
    (root / "C02/2026-01-05/dm.csv").symlink_to(outside / "dm.csv")
    (root / "C02/2026-01-05/broken.csv").symlink_to(outside / "missing.csv")


def test_the_listing_is_the_walks_and_changes_with_the_tree_only(tmp_path: Path) -> None:
    root, outside = tmp_path / "raw", tmp_path / "outside"
    _tree(root, outside)
    listed = tree_listing(root)
    assert listed == _walked(root) == tree_listing(root)
    (outside / "dm.csv").write_text("changed outside, behind two links")
    (outside / "new.csv").write_text("new behind a linked folder")
    assert tree_listing(root) == listed
    nested = root / "C01/2026-01-12/nested/x.csv"
    nested.write_text("a longer text than before")
    assert tree_listing(root) not in (listed, "") and tree_listing(root) == _walked(root)
    changed = tree_listing(root)
    os.utime(nested, ns=(1, 1))
    assert tree_listing(root) not in (listed, changed)


def test_a_link_target_is_part_of_the_listing(tmp_path: Path) -> None:
    root, outside = tmp_path / "raw", tmp_path / "outside"
    _tree(root, outside)
    listed = tree_listing(root)
    link = root / "C02/2026-01-05/dm.csv"
    link.unlink()
    link.symlink_to(outside / "other.csv")
    assert tree_listing(root) != listed and tree_listing(root) == _walked(root)
