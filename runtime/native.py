"""The hot modules compiled to C with mypyc, used only when they were built from the sources here.

The matcher spends most of its time in a few modules: decoding commands, building and encoding
the output records, handing them to the Kafka client. mypyc compiles those (typed Python, the
same files) into extension modules; the build writes them under ``build/native`` with a
manifest. :func:`install` puts a finder in front of the import system that serves the compiled
modules only when the build is current, all of them or none: a compiled module calls the others
of its group directly, so a group must never be mixed with newer sources. A missing, stale or
foreign build (another Python) means the plain sources run, with the reason in :func:`status`.

What "current" means: a compiled module is built against more than its own source. mypy reads
every module it imports, transitively, and mypyc bakes what it learns into the C: a NamedTuple
of another module is handled as a tuple, its fields read by position, and a ``Final`` constant
may be inlined. Change ``Halt`` in ``matcher/core/commands.py`` from a
NamedTuple to a dataclass and the compiled ``matcher.wire`` dies with "tuple object expected";
reorder ``NewOrder``'s fields and it reads the wrong ones, silently. So the manifest lists the
SHA-256 of every input of the build (:func:`build_inputs`): every project source reachable by
imports from the compiled and generated modules (the set mypy analysed, found the way mypy
finds it: every ``import`` statement, wherever it stands, and the packages above each module),
plus the data files the generated modules are generated from (:data:`GENERATED_INPUTS`: the
Avro schemas and the release list, so a schema change is reported here rather than only making
the generated codec fall back on its own). The walk is done once, at build time; loading hashes
the listed files again (a few dozen, a few milliseconds), which is enough because the graph
can only change through an import line in a file already listed. Any difference, a listed file
gone or a new schema file, and nothing is served.

``EXCHANGE_NATIVE=0`` turns it off. The matching core is not compiled: it is tuned for the
interpreter (tuple and list subclasses), and mypyc refuses those shapes.

Build: ``exchange native build`` (``./dev`` runs it; it does nothing when up to date). The
entry points install the finder (``exchange``, the test suite's conftest); importing ``matcher``
does not.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from runtime.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NATIVE_DIR = PROJECT_ROOT / "build" / "native"
MANIFEST = "manifest.json"
GROUP = "exchange_native"  # mypyc's shared library of the group: GROUP + "__mypyc"
ENV_SWITCH = "EXCHANGE_NATIVE"

# What is compiled: where the time goes per command, and nothing the matching core holds.
COMPILED_MODULES: tuple[str, ...] = (
    "schemas.compiled",
    "matcher.wire",
    "matcher.processor",
    "runtime.kafka",
)


# Modules generated at build time: name -> "module:function" returning the source to compile.
GENERATED_MODULES: dict[str, str] = {"_exchange_avro": "schemas.codec:generated_source"}

# The data files (globs under the project root) the generated modules are generated from; the
# Python that generates them is found by the import walk (see build_inputs).
GENERATED_INPUTS: tuple[str, ...] = ("schemas/*.avsc", "schemas/released.json")


@dataclass(frozen=True)
class Build:
    """A usable build: module name -> extension file, for every module the manifest lists."""

    files: Mapping[str, Path]
    generated: Mapping[str, str] = field(default_factory=dict)  # generated module -> its source's SHA-256


def source_file(module: str, root: Path = PROJECT_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def check(native_dir: Path, root: Path = PROJECT_ROOT) -> Build | str:
    """The build in ``native_dir`` if it was made from the files under ``root``; else why not.

    Every input the manifest lists must still have its hash, and no data file may have joined
    :data:`GENERATED_INPUTS` since (see the module docstring).
    """
    try:
        manifest = json.loads((native_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return "not built (exchange native build)"
    except (OSError, ValueError) as exc:
        return f"unreadable manifest: {exc}"
    if manifest.get("extension_suffix") != extension_suffix():
        return f"built for {manifest.get('extension_suffix')!r}, this Python loads {extension_suffix()!r}"
    files: dict[str, Path] = {}
    generated: dict[str, str] = {}
    for module, entry in manifest.get("modules", {}).items():
        if entry.get("generated"):
            generated[module] = entry["source_sha256"]  # the module that loads it checks it
        elif entry.get("source_sha256") is not None:
            source = source_file(module, root)
            if not source.is_file() or source_digest(source) != entry["source_sha256"]:
                return f"stale: {module} changed since the build (exchange native build)"
        files[module] = native_dir / entry["file"]
    inputs = manifest.get("inputs")
    if not isinstance(inputs, dict):
        return "stale: the manifest lists no inputs, an older build (exchange native build)"
    for name, digest in inputs.items():
        path = root / name
        if not path.is_file() or source_digest(path) != digest:
            return f"stale: {name} changed since the build (exchange native build)"
    added = sorted(set(_data_inputs(root)) - set(inputs))
    if added:
        return f"stale: {added[0]} is new since the build (exchange native build)"
    missing = sorted(module for module, file in files.items() if not file.is_file())
    if missing:
        return f"incomplete: no extension for {', '.join(missing)}"
    return Build(files, generated)


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Serves the modules of one build from their extension files; everything else as usual."""

    def __init__(self, build: Build) -> None:
        self.build = build

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self.build.files.get(fullname)
        return None if file is None else importlib.util.spec_from_file_location(fullname, file)


@functools.cache
def install(native_dir: Path = NATIVE_DIR) -> str:
    """Serve the compiled modules when the build matches the sources (once per process); the status.

    Process-wide policy, so set by the entry points before they import a compiled module: the
    ``exchange`` CLI (and so every service it starts) and the test suite's conftest.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"off ({ENV_SWITCH}=0)"
    build = check(native_dir)
    if isinstance(build, str):
        return f"interpreted: {build}"
    already = sorted(module for module in build.files if module in sys.modules)
    if already:  # imported before the finder existed: mixing would break the group
        return f"interpreted: imported before install: {', '.join(already)}"
    sys.meta_path.insert(0, _CompiledFinder(build))
    _installed.append(build)
    return "compiled"


_installed: list[Build] = []  # the build install() put in front of the import system, if any


def generated_module(name: str, source: str) -> ModuleType | None:
    """The compiled module ``name`` if the installed build compiled exactly ``source``; else None."""
    install()
    for build in _installed:
        if build.generated.get(name) == hashlib.sha256(source.encode()).hexdigest():
            return importlib.import_module(name)
    return None


def status() -> str:
    """``compiled``, or why the plain sources run (or are off)."""
    return install()


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from an extension file."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


# --- the build -------------------------------------------------------------------------------------

_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify

sources, build_lib, build_temp, c_dir, group = sys.argv[1:6]
setup(
    name=group,
    ext_modules=mypycify(sources.split(","), group_name=group, target_dir=c_dir, opt_level="3"),
    script_args=["build_ext", "--build-lib", build_lib, "--build-temp", build_temp],
)
"""


def generated_sources() -> dict[str, str]:
    """The source of every generated module, as the code that loads it generates it now."""
    sources = {}
    for module, where in GENERATED_MODULES.items():
        owner, function = where.split(":")
        sources[module] = str(getattr(importlib.import_module(owner), function)())
    return sources


def _data_inputs(root: Path) -> list[str]:
    """The files under ``root`` that :data:`GENERATED_INPUTS` names, as root-relative paths."""
    return sorted(path.relative_to(root).as_posix() for p in GENERATED_INPUTS for path in root.glob(p))


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement of ``module`` (parsed as ``tree``) may load.

    Statements anywhere count (in functions, under ``if TYPE_CHECKING``): mypy follows them all.
    ``from a import b`` may load ``a.b``; names that are not modules are dropped by the caller.
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def project_file(module: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The file of ``module`` if it belongs to a package of the project under ``root``, else None."""
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts) or not (root / parts[0] / "__init__.py").is_file():
        return None
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):  # a package wins
        if candidate.is_file():
            return candidate
    return None


def build_inputs(
    generated: Mapping[str, str], root: Path = PROJECT_ROOT, modules: Sequence[str] = COMPILED_MODULES
) -> dict[str, str]:
    """Root-relative path -> SHA-256 of every file a build of ``modules`` and of the ``generated``
    module sources is made from: each project source reachable from them by imports (with the
    packages above each), and the :data:`GENERATED_INPUTS` data files."""
    pending = list(modules)
    for text in generated.values():
        pending.extend(imported_names(ast.parse(text), "", is_package=False))
    seen: set[str] = set()
    files: list[Path] = []
    while pending:
        parts = pending.pop().split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            module = ".".join(parts[:depth])
            if module in seen:
                continue
            seen.add(module)
            path = project_file(module, root)
            if path is not None:  # else not ours (the standard library, a dependency) or not a module
                files.append(path)
                tree = ast.parse(path.read_bytes(), str(path))
                pending.extend(imported_names(tree, module, is_package=path.name == "__init__.py"))
    names = [path.relative_to(root).as_posix() for path in files] + _data_inputs(root)
    return {name: source_digest(root / name) for name in sorted(names)}


def wanted_manifest(generated: Mapping[str, str], root: Path = PROJECT_ROOT) -> dict[str, object]:
    """The manifest of a build of the sources under ``root`` plus the ``generated`` module sources."""
    suffix = extension_suffix()
    entries: dict[str, dict[str, object]] = {
        module: {"source_sha256": source_digest(source_file(module, root)), "file": _file_of(module)}
        for module in COMPILED_MODULES
    }
    for module, text in generated.items():
        entries[module] = {
            "source_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "generated": True,
            "file": _file_of(module),
        }
    entries[f"{GROUP}__mypyc"] = {"source_sha256": None, "file": _file_of(f"{GROUP}__mypyc")}
    return {"extension_suffix": suffix, "modules": entries, "inputs": build_inputs(generated, root)}


def _file_of(module: str) -> str:
    return "/".join(module.split(".")) + extension_suffix()


def _read_manifest(native_dir: Path) -> object:
    try:
        return json.loads((native_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def build(native_dir: Path = NATIVE_DIR, root: Path = PROJECT_ROOT) -> bool:
    """Compile the modules into ``native_dir`` unless that build is current; whether it compiled."""
    generated = generated_sources()
    manifest = wanted_manifest(generated, root)
    if _read_manifest(native_dir) == manifest and not isinstance(check(native_dir, root), str):
        return False
    native_dir.mkdir(parents=True, exist_ok=True)
    (native_dir / MANIFEST).unlink(missing_ok=True)  # no manifest while the files change
    generated_dir = native_dir / "generated"
    generated_dir.mkdir(exist_ok=True)
    paths = [source_file(module, root) for module in COMPILED_MODULES]
    for module, text in generated.items():
        paths.append(generated_dir / f"{module}.py")
        paths[-1].write_text(text)
    sources = ",".join(str(path) for path in paths)
    if importlib.util.find_spec("mypyc") is None:
        raise UserError("compiling the hot modules needs mypy (mypyc): pip install -e '.[dev]'")
    with tempfile.TemporaryDirectory(prefix="native-build-") as work:
        # Run in an empty directory: setuptools and mypy must not read the project's own config
        # (its strict settings are for checking, not for compiling).
        compiler = subprocess.run(
            [sys.executable, "-c", _SETUP, sources, str(native_dir), work, str(native_dir / "c"), GROUP],
            check=False,
            cwd=work,
            env={**os.environ, ENV_SWITCH: "0", "PYTHONPATH": str(root), "MYPYPATH": str(root)},
            capture_output=True,
            text=True,
        )
    if compiler.returncode != 0:
        tail = "\n".join((compiler.stdout + compiler.stderr).strip().splitlines()[-25:])
        raise UserError(f"mypyc failed (it needs a C compiler and the Python headers):\n{tail}")
    (native_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return True


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("build", "status"),
        help="build: compile what changed since the last build; status: whether the compiled modules load",
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        outcome = "compiled" if build() else "up to date"
        sys.stdout.write(json.dumps({"build": outcome, "directory": str(NATIVE_DIR)}) + "\n")
        return 0
    sys.stdout.write(json.dumps({"native": status(), "directory": str(NATIVE_DIR)}) + "\n")
    return 0 if status() == "compiled" else 1
