"""The compiled modules: served only when built from these very sources, and identical in effect.

`./dev test` builds them first (``exchange native build``), so this suite runs on the compiled
modules, the way the services do; one test runs the processor both ways and compares bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import matcher.processor
import matcher.wire
import runtime.kafka
import schemas.compiled
from runtime import native
from runtime.native import Build, check, extension_suffix, source_digest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"


def fake_build(root: Path, source: str = "VALUE = 1\n") -> Path:
    """A project with one module, ``pkg.mod``, and a build of it: the manifest and the file."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(source)
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
from confluent_kafka import Message
from bench.wireflow import flow_registry_yaml, read_flow, wire_command
from matcher.processor import Processor
from matcher.wire import core_params
from runtime import native
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
