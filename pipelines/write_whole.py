"""Files written whole: written beside their place (``.<name>.writing``), then renamed into it,
so that a reader, or a run after one killed mid-write, never finds half a file."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def aside(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: ``.<name>.writing`` beside it."""
    return path.with_name(f".{path.name}.writing")


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """The path to write ``path``'s content to (its folder created); renamed to ``path`` when
    the block ends without an error, left aside otherwise (the next write replaces it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writing = aside(path)
    yield writing
    writing.replace(path)
