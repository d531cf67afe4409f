"""The Go tools are built once into the cache, into place only when the build succeeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import UserError
from tests.deploy_tools import GoTool, ensure_tool, tool_path

TOOL = GoTool("sometool", "example.com/sometool/cmd/sometool", "v1.2.3")


def _fake_go(bin_dir: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text("#!/bin/sh\n" + script)
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir / "calls"


def test_a_tool_is_built_with_go_install_into_its_versioned_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_go(
        tmp_path / "bin",
        f'echo "$@ $GOTOOLCHAIN" >> {tmp_path}/bin/calls\nprintf "#!/bin/sh\\n" > "$GOBIN/sometool"\n',
        monkeypatch,
    )

    path = ensure_tool(TOOL, tmp_path / "tools")

    assert path == tool_path(TOOL, tmp_path / "tools") == tmp_path / "tools" / "sometool-v1.2.3" / "sometool"
    assert path.is_file()
    assert calls.read_text() == "install example.com/sometool/cmd/sometool@v1.2.3 local\n"


def test_a_built_tool_is_reused_without_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_go(tmp_path / "bin", f"echo again >> {tmp_path}/bin/calls\nexit 1\n", monkeypatch)
    built = tool_path(TOOL, tmp_path / "tools")
    built.parent.mkdir(parents=True)
    built.write_text("")

    assert ensure_tool(TOOL, tmp_path / "tools") == built
    assert not calls.exists()


def test_a_failed_build_says_what_failed_and_leaves_nothing_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_go(tmp_path / "bin", 'echo "module requires go >= 1.99" >&2\nexit 1\n', monkeypatch)

    with pytest.raises(UserError, match=r"sometool@v1\.2\.3 failed:\nmodule requires go >= 1\.99"):
        ensure_tool(TOOL, tmp_path / "tools")
    assert not tool_path(TOOL, tmp_path / "tools").parent.exists()
