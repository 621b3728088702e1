"""Which unpartitioned assets a refresh must recompute: content hashes and code versions.

Dagster materialises whatever a run selects; this module decides the selection, so that a
refresh recomputes only what can have changed (``docs/incremental.md``). It uses content
hashes recorded by the IO manager, not Dagster's data versions: the IO manager hashes every
stored value as it writes it (:func:`record_content`), and at the end of its step each asset
that was computed, and whose checks passed, gets a fingerprint: the hash of

- its code version (:func:`code_version`: the source of its compute function and of every
  project module that function reaches, and its data contract),
- the run's settings that every asset sees (the study file's bytes, the sealed list's bytes
  or "blinded"),
- the content hashes of its upstream assets (a partitioned upstream: the partition keys
  stored, which are content keys), and, for the raw group, the raw tree's listing.

Before the next refresh an asset is stale when it has no fingerprint, its stored value is
gone, its fingerprint differs from the one its current inputs and code give, or an upstream
asset is stale. Nothing stale and no delivery to read: the run does nothing and says so.

Staleness before the run cannot know which recomputed assets will come out unchanged. So
the step of an asset asks again once its upstream assets are (re)materialised
(:func:`step_freshness`, :meth:`Freshness.unchanged`): when its fingerprint equals the one its
inputs give now, its stored value is reused (:data:`REUSED`: not rewritten, its content hash
kept) and its materialisation says ``reused``, so that what is downstream of it is reused in
turn unless another input changed; otherwise it computes, and records its fingerprint at the
end of the step. That holds in every run: ``ionto run``'s refresh (which also lists the raw
tree, :func:`reusing_unchanged`) and a run from the Dagster UI or a sensor (which computes the
raw group, and reuses what is unchanged downstream of it).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import types
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from ingest.landing import tree_entries
from pipelines.write_whole import written_whole
from study import DEFAULT_STUDY, example_study_path

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

PROJECT_PACKAGES = ("study", "data_contracts", "ingest", "trial", "pipelines")
CONTRACTS = Path(__file__).resolve().parents[1] / "data_contracts"
FINGERPRINTS = ".fingerprints"


def _digest(parts: Iterable[str | bytes]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


@cache
def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


@cache
def _module_imports(module: str) -> frozenset[str]:
    """Project modules that ``module`` imports (at top level or inside functions)."""
    path = _module_file(module)
    if path is None:
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return frozenset(m for m in found if _is_project(m) and _module_file(m) is not None)


def module_closure(modules: Iterable[str]) -> set[str]:
    """``modules`` and every project module they import, transitively."""
    seen: set[str] = set()
    todo = [m for m in modules if _is_project(m)]
    while todo:
        module = todo.pop()
        if module in seen or _module_file(module) is None:
            continue
        seen.add(module)
        todo.extend(_module_imports(module) - seen)
    return seen


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _reached(fn: Any, modules: set[str], sources: dict[str, str]) -> None:
    """Collect what ``fn`` reaches: functions of its own module by their source (recursively),
    anything else of the project by its whole module."""
    fn = inspect.unwrap(fn)
    key = f"{fn.__module__}.{fn.__qualname__}"
    if key in sources:
        return
    sources[key] = inspect.getsource(fn)
    for name in _code_names(fn.__code__):
        value = fn.__globals__.get(name)
        if isinstance(value, types.ModuleType):
            modules.add(value.__name__)
        elif isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
            _reached(value, modules, sources)
        elif value is not None and _is_project(getattr(value, "__module__", "") or ""):
            modules.add(value.__module__)


def code_version(assets_def: dg.AssetsDefinition) -> str:
    """Hash of the code that computes ``assets_def``: its compute function's source, the
    functions of its own module that it calls, every project module it reaches (transitively,
    by their source files) with the data file a module keeps beside it under its own name
    (``data_contracts/trial_rules.py`` reads ``trial_rules.yaml``), and the data contracts of
    its assets."""
    modules: set[str] = set()
    sources: dict[str, str] = {}
    _reached(assets_def.op.compute_fn.decorated_fn, modules, sources)  # type: ignore[union-attr]
    files = sorted(str(_module_file(m)) for m in module_closure(modules))
    files += sorted(str(d) for f in files if (d := Path(f).with_suffix(".yaml")).is_file())
    contracts = sorted(
        CONTRACTS / f"{key.to_user_string()}.odcs.yaml"
        for key in assets_def.keys
        if (CONTRACTS / f"{key.to_user_string()}.odcs.yaml").is_file()
    )
    return _digest(
        [*(sources[k] for k in sorted(sources))]
        + [Path(f).read_bytes() for f in files]
        + [c.read_bytes() for c in contracts]
    )


def tree_listing(root: Path) -> str:
    """Hash of every entry under ``root`` (path, size, modification time, link target),
    links not followed, in :func:`ingest.landing.tree_entries`' order: what a refresh
    compares to see that the raw tree is unchanged."""
    entries = []
    for rel, entry in tree_entries(root):
        stat = entry.stat(follow_symlinks=False)
        link = os.readlink(entry.path) if entry.is_symlink() else ""
        entries.append(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\t{link}")
    return _digest(entries)


def file_digest(path: Path) -> str:
    """Content hash of one file, read in blocks of 1 MiB."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def files_digest(paths: Iterable[Path]) -> str:
    """Content hash of several files: each one's name and content hash, by name."""
    return _digest(f"{p.name}={file_digest(p)}" for p in sorted(paths, key=lambda p: p.name))


def content_digest(digests: Iterable[str]) -> str:
    """The content hash of a value held in several files, from theirs, in order."""
    return _digest(digests)


def _store(out_dir: Path) -> Path:
    return Path(out_dir) / FINGERPRINTS


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    with written_whole(path) as writing:
        writing.write_text(json.dumps(value, sort_keys=True), "utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def record_content(out_dir: Path, asset: str, digest: str, stored: Iterable[Path]) -> None:
    """Called by the IO manager once it has stored ``asset``: the content hash and the files
    that hold the value, under ``out_dir`` (a fingerprint is only trusted while they exist;
    paths are kept relative, so an output folder can be moved)."""
    entry = _read_json(_store(out_dir) / f"{asset}.json")
    files = sorted(str(Path(p).relative_to(out_dir)) for p in stored)
    entry.update({"content": digest, "files": files, "self_stored": False})
    _write_json(_store(out_dir) / f"{asset}.json", entry)


def forget_content(out_dir: Path, asset: str) -> None:
    """Called by the IO manager before it replaces a stored value in more than one step: until
    :func:`record_content`, ``asset`` has no content hash, so a run killed in between leaves
    it stale (computed again), never trusted."""
    path = _store(out_dir) / f"{asset}.json"
    entry = _read_json(path)
    if entry.pop("content", None) is not None:
        _write_json(path, entry)


def _content(out_dir: Path, asset: str) -> str | None:
    entry = _read_json(_store(out_dir) / f"{asset}.json")
    files = entry.get("files", [])
    if "content" not in entry or not all((Path(out_dir) / f).exists() for f in files):
        return None
    return str(entry["content"])


def _partition_keys(out_dir: Path, asset: str) -> str:
    folder = Path(out_dir) / "partitions" / asset
    keys = sorted(p.name.removesuffix(".parquet") for p in folder.glob("[!.]*"))
    return _digest(keys)


class Freshness:
    """Fingerprints of the unpartitioned assets of an asset ``graph`` (the definitions') for
    one run's settings. ``raw_listing``: the raw tree's listing and delivery keys, which the
    raw group is computed from besides its inputs; None where the caller did not list the tree
    (a run from the Dagster UI): the raw group is then never current, and recorded so."""

    def __init__(
        self,
        graph: AssetGraph,
        out_dir: Path,
        settings_digest: str,
        raw_listing: str | None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.graph = graph
        self.settings_digest = settings_digest
        self.raw_listing = raw_listing
        self._keys = {
            key
            for assets_def in graph.assets_defs
            if assets_def.is_executable and not assets_def.partitions_def
            for key in assets_def.keys
        }
        self._code: dict[dg.AssetKey, str] = {}

    def _code_version(self, key: dg.AssetKey) -> str:
        """:func:`code_version` of ``key``'s definition, computed when first asked (a step
        asks for its own assets only)."""
        if key not in self._code:
            assets_def = self.graph.assets_def_for_key(key)
            version = code_version(assets_def)
            self._code.update({k: version for k in assets_def.keys})
        return self._code[key]

    @property
    def assets(self) -> list[dg.AssetKey]:
        """The unpartitioned assets, upstream before downstream."""
        order = self.graph.toposorted_asset_keys
        return [k for k in order if k in self._keys]

    def _inputs(self, key: dg.AssetKey) -> str | None:
        """What ``key`` is computed from, as one hash; None when an input is not stored (or
        the raw tree was not listed, for the raw group)."""
        node = self.graph.get(key)
        parts = [self._code_version(key), self.settings_digest]
        if node.group_name == "raw":
            if self.raw_listing is None:
                return None
            parts.append(self.raw_listing)
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            name = parent.to_user_string()
            if self.graph.get(parent).partitions_def is not None:
                parts.append(f"{name}={_partition_keys(self.out_dir, name)}")
                continue
            content = _content(self.out_dir, name)
            if content is None:
                return None
            parts.append(f"{name}={content}")
        return _digest(parts)

    def _current(self, key: dg.AssetKey) -> bool:
        """Whether ``key``'s stored value is what its inputs, code and settings give now: its
        fingerprint is recorded, the files holding its value exist, and its inputs (upstream
        content hashes as stored now) hash to the fingerprint."""
        name = key.to_user_string()
        recorded = _read_json(_store(self.out_dir) / f"{name}.json").get("inputs")
        return (
            recorded is not None
            and _content(self.out_dir, name) is not None
            and recorded == self._inputs(key)
        )

    def stale(self) -> list[dg.AssetKey]:
        """The assets a refresh must recompute, upstream before downstream."""
        stale: set[dg.AssetKey] = set()
        for key in self.assets:
            if any(p in stale for p in self.graph.get(key).parent_keys) or not self._current(key):
                stale.add(key)
        return [k for k in self.assets if k in stale]

    def unchanged(self, keys: Iterable[dg.AssetKey]) -> bool:
        """Whether every one of ``keys`` (the assets of one step) is unpartitioned and current
        now (asked by the step, once its upstream assets are materialised)."""
        return all(key in self._keys and self._current(key) for key in keys)

    def record(
        self, materialised: Mapping[dg.AssetKey, list[Path]], failed_checks: set[dg.AssetKey]
    ) -> None:
        """At the end of a step (:mod:`pipelines.asset_step`): fingerprint each asset it
        computed whose checks all passed (an asset with a failing check stays stale, so its
        check runs again). ``materialised`` gives, for an asset that stores its own files (a
        report), the paths it reported: they stand for its stored value, whose content is then
        its fingerprint. A step that reused its stored values records nothing: their
        fingerprints stand. A run killed later keeps the fingerprints of its finished steps."""
        for key in materialised.keys() & self._keys:
            path = _store(self.out_dir) / f"{key.to_user_string()}.json"
            entry = _read_json(path)
            inputs = None if key in failed_checks else self._inputs(key)
            if entry.get("self_stored", "content" not in entry):
                files = sorted(str(p.relative_to(self.out_dir)) for p in materialised[key])
                entry.update({"content": inputs, "files": files, "self_stored": True})
            entry["inputs"] = inputs
            _write_json(path, entry)


class Reused:
    """The type of :data:`REUSED`."""

    def __repr__(self) -> str:
        return "REUSED"


REUSED = Reused()
"""The value a step gives for an output whose stored value it reuses: the IO manager writes
nothing for it."""
REUSED_METADATA = {"reused": True}
"""The metadata of a reused output's materialisation, by which ``ionto run`` tells it from a
recomputed one (:func:`was_reused`)."""
_IN_RUN: ContextVar[Freshness | None] = ContextVar("freshness_in_run", default=None)
_OF_RUN: dict[str, Freshness] = {}
"""The fingerprints of the Dagster run this process executes steps of, by run id, when the
run was not started by ``ionto run`` (the UI, a sensor's run, ``dagster asset materialize``)."""


@contextmanager
def reusing_unchanged(freshness: Freshness) -> Iterator[None]:
    """Within this block, an asset step run in this thread (``ionto run`` executes in-process)
    takes ``freshness`` (the raw tree listed) as its run's (:func:`step_freshness`)."""
    token = _IN_RUN.set(freshness)
    try:
        yield
    finally:
        _IN_RUN.reset(token)


def step_freshness(context: dg.AssetExecutionContext) -> Freshness:
    """The fingerprints a step compares with and records to: ``ionto run``'s
    (:func:`reusing_unchanged`), else one made for the step's run from its settings and its
    job's asset graph, without a listing of the raw tree (so a run from the UI reuses
    every unchanged asset but the raw group's, which it computes)."""
    freshness = _IN_RUN.get()
    if freshness is not None:
        return freshness
    run_id = context.run.run_id
    if run_id not in _OF_RUN:
        _OF_RUN.clear()  # a process executes the steps of one run at a time
        settings = context.resources.settings
        _OF_RUN[run_id] = Freshness(
            context.job_def.asset_layer.asset_graph,
            Path(settings.out_dir).resolve(),
            settings_digest(settings.study_path, settings.unblind_path),
            None,
        )
    return _OF_RUN[run_id]


def was_reused(metadata: Mapping[str, Any]) -> bool:
    """Whether a materialisation's ``metadata`` says its stored value was reused."""
    value = metadata.get("reused")
    return bool(getattr(value, "value", value))


def settings_digest(study_path: str, unblind_path: str) -> str:
    """What every asset sees of the run's settings: the study file's bytes (the bundled
    study's when none is given) and the sealed list's (or "blinded")."""
    study = file_digest(Path(study_path) if study_path else example_study_path(DEFAULT_STUDY))
    return _digest([study, _sealed_digest(unblind_path)])


def _sealed_digest(unblind_path: str) -> str:
    """The sealed list's content hash, "blinded" without one, and a marker no recorded
    fingerprint holds when the file is not there (a run from the UI whose ``IONTO_UNBLIND``
    names a missing file: nothing is reused, and the step that reads the list says why)."""
    if not unblind_path:
        return "blinded"
    path = Path(unblind_path)
    return file_digest(path) if path.is_file() else f"no file {path}"
