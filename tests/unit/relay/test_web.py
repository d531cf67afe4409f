"""The page's static files and its config: types, the web directory as a fence, loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.web import WEB_ROOT, page_config, web_file


def test_the_root_serves_the_page_as_html() -> None:
    page = web_file("/")

    assert page.status == 200
    assert page.content_type == "text/html; charset=utf-8"
    assert b'<script type="module" src="app.js">' in page.body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/app.js", "text/javascript; charset=utf-8"), ("/style.css", "text/css; charset=utf-8")],
)
def test_each_file_is_served_with_its_content_type(path: str, content_type: str) -> None:
    page = web_file(path)

    assert (page.status, page.content_type) == (200, content_type)
    assert page.body == (WEB_ROOT / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize(
    "path",
    ["/../server.py", "/..%2fserver.py", "/%2e%2e/settings.py", "/../../pyproject.toml", "//etc/passwd"],
)
def test_a_path_out_of_the_web_directory_is_not_found(path: str) -> None:
    assert web_file(path).status == 404


def test_a_symlink_out_of_the_web_directory_is_not_found(tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("key")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")

    assert web_file("/link.txt", root).status == 404


def test_missing_files_folders_and_unknown_types_are_not_found(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.py").write_text("x = 1")

    assert [web_file(p, tmp_path).status for p in ("/nothing.js", "/sub", "/notes.py")] == [404] * 3


def test_the_page_config_goes_to_loopback_clients_only(tmp_path: Path) -> None:
    config = tmp_path / "page-config.json"
    config.write_text('{"key": "demo"}')

    assert page_config(config, "127.0.0.1", "127.0.0.1:8090").body == b'{"key": "demo"}'
    assert page_config(config, "::1", "[::1]:8090").status == 200
    assert page_config(config, "127.0.0.1", "localhost:8090").status == 200
    assert page_config(config, "10.1.2.3", "127.0.0.1:8090").status == 404
    assert page_config(config, "", "127.0.0.1:8090").status == 404


def test_the_page_config_is_refused_to_a_page_of_another_host_name_on_loopback(tmp_path: Path) -> None:
    config = tmp_path / "page-config.json"
    config.write_text("{}")

    assert page_config(config, "127.0.0.1", "rebound.example:8090").status == 404
    assert page_config(config, "127.0.0.1", "").status == 404


def test_without_a_page_config_there_is_none() -> None:
    assert page_config(None, "127.0.0.1", "127.0.0.1:8090").status == 404
