"""The compiled modules: served only when built from these very sources, and identical in effect.

`./dev test` builds them first (``exchange native build``), so this suite runs on the compiled
modules, the way the services do; one test runs the processor both ways and compares bytes.
"These very sources" are every file the build was made from, not only the compiled ones: a
copy of the project whose core changed under the build runs the plain sources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import matcher.processor
import matcher.wire
import runtime.kafka
import schemas.compiled
from runtime import native
from runtime.native import Build, build_inputs, check, extension_suffix, source_digest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"
CHANGED = "changed since the build (exchange native build)"


def fake_build(root: Path, source: str = "VALUE = 1\n", others: Mapping[str, str] | None = None) -> Path:
    """A project with one compiled module, ``pkg.mod`` (and the ``others`` files, path -> text,
    that it may import), and a build of it: the manifest and the file."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(source)
    for name, text in (others or {}).items():
        (root / name).write_text(text)
    native_dir = root / "native"
    (native_dir / "pkg").mkdir(parents=True)
    (native_dir / "pkg" / f"mod{extension_suffix()}").write_bytes(b"compiled")
    manifest = {
        "extension_suffix": extension_suffix(),
        "modules": {
            "pkg.mod": {
                "source_sha256": source_digest(root / "pkg" / "mod.py"),
                "file": f"pkg/mod{extension_suffix()}",
            }
        },
    }
    manifest["inputs"] = build_inputs({}, root, ["pkg.mod"])
    (native_dir / native.MANIFEST).write_text(json.dumps(manifest))
    return native_dir


def test_a_build_of_the_current_sources_is_served(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)

    build = check(native_dir, tmp_path)

    assert build == Build({"pkg.mod": native_dir / "pkg" / f"mod{extension_suffix()}"})


def test_a_source_changed_after_the_build_makes_it_stale(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 2\n")

    assert check(native_dir, tmp_path) == "stale: pkg.mod changed since the build (exchange native build)"


def test_every_project_module_a_compiled_one_imports_is_an_input(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    sources = {
        "pkg/__init__.py": "",
        "pkg/mod.py": "import json\nfrom pkg.sub import layout\nfrom . import helper\n",
        "pkg/helper.py": "def later() -> None:\n    import pkg.lazy\n",  # wherever it stands
        "pkg/lazy.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/layout.py": "from typing import NamedTuple\n",
        "pkg/unused.py": "",
    }
    for name, text in sources.items():
        (tmp_path / name).write_text(text)

    inputs = build_inputs({}, tmp_path, ["pkg.mod"])

    assert sorted(inputs) == [
        "pkg/__init__.py", "pkg/helper.py", "pkg/lazy.py", "pkg/mod.py", "pkg/sub/__init__.py",
        "pkg/sub/layout.py",
    ]  # fmt: skip
    assert inputs["pkg/sub/layout.py"] == source_digest(tmp_path / "pkg" / "sub" / "layout.py")


def test_a_module_the_compiled_one_imports_changed_after_the_build_makes_it_stale(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path, "from pkg.layout import Order\n", {"pkg/layout.py": "Order = tuple\n"})
    (tmp_path / "pkg" / "layout.py").write_text("Order = list\n")

    assert check(native_dir, tmp_path) == f"stale: pkg/layout.py {CHANGED}"


def test_a_schema_added_after_the_build_makes_it_stale(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "Extra.avsc").write_text("{}")

    assert (
        check(native_dir, tmp_path)
        == "stale: schemas/Extra.avsc is new since the build (exchange native build)"
    )


def test_a_manifest_that_lists_no_inputs_is_stale(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)
    manifest = json.loads((native_dir / native.MANIFEST).read_text())
    del manifest["inputs"]
    (native_dir / native.MANIFEST).write_text(json.dumps(manifest))

    assert str(check(native_dir, tmp_path)).startswith("stale: the manifest lists no inputs")


def test_no_manifest_means_not_built(tmp_path: Path) -> None:
    assert check(tmp_path / "nowhere", tmp_path) == "not built (exchange native build)"


def test_a_build_for_another_python_is_not_loaded(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)
    manifest = json.loads((native_dir / native.MANIFEST).read_text())
    manifest["extension_suffix"] = ".cpython-39-x86_64-linux-gnu.so"
    (native_dir / native.MANIFEST).write_text(json.dumps(manifest))

    assert str(check(native_dir, tmp_path)).startswith("built for '.cpython-39")


def test_a_missing_extension_file_makes_the_build_incomplete(tmp_path: Path) -> None:
    native_dir = fake_build(tmp_path)
    (native_dir / "pkg" / f"mod{extension_suffix()}").unlink()

    assert check(native_dir, tmp_path) == "incomplete: no extension for pkg.mod"


def test_the_test_command_runs_the_compiled_modules() -> None:
    """What `./dev test` and `./dev up` build is what runs: every listed module compiled."""
    modules = [schemas.compiled, matcher.wire, matcher.processor, runtime.kafka]

    assert native.status() == "compiled"
    assert [m.__name__ for m in modules if not native.is_compiled(m)] == []
    assert sorted(m.__name__ for m in modules) == sorted(native.COMPILED_MODULES)


# Runs the processor over a flow in a fresh interpreter; prints the native status and a digest
# of every output record (topic role, partition, key, value, headers) and of the engine's state.
_DIGEST_OUTPUTS = """
import hashlib, json, sys
from pathlib import Path
from runtime import native
native.install()  # as the exchange command does, before any compiled module is imported
from confluent_kafka import Message
from bench.wireflow import flow_registry_yaml, read_flow, wire_command
from matcher.processor import Processor
from matcher.wire import core_params
from runtime.symbols import load_registry
from schemas import default_codec

flow, registry_file = Path(sys.argv[1]), Path(sys.argv[2])
rows = list(read_flow(flow))
registry_file.write_text(flow_registry_yaml(sorted({row.symbol for row in rows})))
codec = default_codec()
processor = Processor(0, 1, codec, map(core_params, load_registry(registry_file).symbols_of_partition(0)))
digest = hashlib.sha256()
for offset, row in enumerate(rows):
    command = wire_command(row)
    value, headers = codec.encode(command.schema, command.record, checked=False)
    message = Message(topic="orders", partition=0, offset=offset, key=command.symbol.encode(), value=value,
                      headers=headers)
    for record in processor.step(message).records:
        digest.update(repr(tuple(record)).encode())
print(json.dumps({"native": native.status(), "outputs": digest.hexdigest(),
                  "state": processor.engine.state_hash(), "commands": len(rows)}))
"""


@pytest.fixture(scope="module")
def mixed_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    flow = tmp_path_factory.mktemp("flow") / "mixed.csv"
    subprocess.run(
        [
            sys.executable,
            str(FLOW),
            "--profile",
            "mixed",
            "--orders",
            "5000",
            "--symbols",
            "3",
            "--seed",
            "11",
            "-o",
            str(flow),
        ],
        check=True,
    )
    return flow


def digest_outputs(flow: Path, registry: Path, native_switch: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _DIGEST_OUTPUTS, str(flow), str(registry)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, native.ENV_SWITCH: native_switch},
    )
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_compiled_and_interpreted_processors_write_the_same_bytes(mixed_flow: Path, tmp_path: Path) -> None:
    compiled = digest_outputs(mixed_flow, tmp_path / "a.yaml", "1")
    interpreted = digest_outputs(mixed_flow, tmp_path / "b.yaml", "0")

    assert (compiled["native"], interpreted["native"]) == ("compiled", "off (EXCHANGE_NATIVE=0)")
    assert compiled["commands"] == 5000
    assert {k: v for k, v in compiled.items() if k != "native"} == {
        k: v for k, v in interpreted.items() if k != "native"
    }


def test_importing_the_matcher_leaves_the_import_system_alone() -> None:
    """The loader is process-wide policy: the entry points install it, a library import does not."""
    probe = "import sys\nbefore = list(sys.meta_path)\nimport matcher, matcher.core\n"
    probe += "print(sys.meta_path == before)"

    assert run_python(probe, PROJECT_ROOT).strip() == "True"


def test_the_cli_installs_the_loader_before_a_subcommand_imports_the_matcher() -> None:
    """So `exchange matcher`, alone or started by `exchange up`, runs the compiled processor."""
    probe = "from exchange.cli import main\nmain(['native', 'status'])\nimport matcher.processor\n"
    probe += "from runtime import native\nprint(native.is_compiled(matcher.processor))"

    status, compiled = run_python(probe, PROJECT_ROOT).splitlines()

    assert (json.loads(status)["native"], compiled) == ("compiled", "True")


def run_python(code: str, root: Path) -> str:
    """What ``code`` prints, run by a fresh interpreter in the project at ``root``."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,  # the packages under root come first on the path, before the installed project's
        env={**os.environ, "PYTHONPATH": str(root), native.ENV_SWITCH: "1"},
    )
    return result.stdout


# --- a copy of the project whose sources changed under the build -------------------------------------

# Installs the loader as the CLI does, then sends a HaltSymbol through the processor; prints the
# status, whether the processor is compiled and the reply's result.
_HALT = """
import json
from runtime import native
status = native.install()
from confluent_kafka import Message
import matcher.processor
from matcher.core import SymbolParams
from schemas import decode, default_codec, encode
processor = matcher.processor.Processor(0, 1, default_codec(), [SymbolParams("ABC")])
origin = {"request_id": "r1", "gateway_id": "gw-1", "reply_partition": 0, "ts_ns": 1}
value, headers = encode("HaltSymbol", {"origin": origin, "symbol": "ABC"})
message = Message(topic="orders", partition=0, offset=0, key=b"ABC", value=value, headers=headers)
[reply] = [decode(r.value, r.headers)[1] for r in processor.step(message).records if r.role == "replies"]
compiled = native.is_compiled(matcher.processor)
print(json.dumps({"native": status, "compiled": compiled, "result": reply["result"]}))
"""


def copy_of_the_project(root: Path) -> Path:
    """The packages the compiled modules are built from, and the current build of them, under ``root``."""
    for package in ("matcher", "runtime", "schemas"):
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    # The extension files and the manifest; not the C sources or the generated Python (never loaded).
    shutil.copytree(native.NATIVE_DIR, root / "build" / "native", ignore=lambda _, __: ["c", "generated"])
    return root


def halt_in(root: Path) -> dict[str, object]:
    answer: dict[str, object] = json.loads(run_python(_HALT, root))
    return answer


def test_a_copy_of_the_project_runs_its_build_compiled(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)

    assert halt_in(root) == {"native": "compiled", "compiled": True, "result": "ACCEPTED"}


def test_a_command_changed_from_namedtuple_to_dataclass_without_rebuilding_runs_the_plain_sources(
    tmp_path: Path,
) -> None:
    """The compiled decoder builds a Halt as a tuple; run against a dataclass Halt, it would die."""
    root = copy_of_the_project(tmp_path)
    commands = root / "matcher" / "core" / "commands.py"
    source = commands.read_text()
    assert "class Halt(NamedTuple):" in source
    source = source.replace("class Halt(NamedTuple):", "@dataclass(frozen=True)\nclass Halt:")
    future = "from __future__ import annotations\n"
    commands.write_text(source.replace(future, future + "from dataclasses import dataclass\n"))

    assert halt_in(root) == {
        "native": f"interpreted: stale: matcher/core/commands.py {CHANGED}",
        "compiled": False,
        "result": "ACCEPTED",
    }
