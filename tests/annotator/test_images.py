"""Image confinement and the image-host allow-list (issue 11, points 2 and 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from annotator.ingest.images import (
    confine_image_path,
    image_root,
    image_roots,
    image_url_allowed,
    record_image_root,
    servable_image_path,
)
from annotator.storage import writer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configured image root holding one real PNG, with a secret image beside (outside) it."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "dog.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    monkeypatch.setenv("IFL_IMAGE_ROOT", str(folder))
    return folder


def test_image_root_is_the_setting_or_db_images_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IFL_IMAGE_ROOT", str(tmp_path / "x" / ".." / "pics"))
    assert image_root() == tmp_path / "pics"
    monkeypatch.delenv("IFL_IMAGE_ROOT")
    monkeypatch.chdir(tmp_path)
    assert image_root() == tmp_path / "db" / "images"


def test_confine_resolves_inside_and_refuses_outside(root: Path) -> None:
    assert confine_image_path("sub/dog.png", root) == root / "sub" / "dog.png"
    assert confine_image_path(str(root / "sub" / "dog.png"), root) == root / "sub" / "dog.png"
    assert confine_image_path("sub/not-yet.png", root) == root / "sub" / "not-yet.png"
    for outside in ("../secret.png", str(root.parent / "secret.png"), "/etc/passwd", "sub/../../secret.png"):
        with pytest.raises(ValueError, match="outside the image root") as raised:
            confine_image_path(outside, root)
        assert repr(outside) in str(raised.value)


def test_a_link_out_of_the_root_is_outside(root: Path) -> None:
    (root / "link.png").symlink_to(root.parent / "secret.png")
    (root / "linked-dir").symlink_to(root.parent)
    for path in ("link.png", "linked-dir/secret.png"):
        with pytest.raises(ValueError, match="outside"):
            confine_image_path(path, root)
        assert servable_image_path(str(root / path)) is None


def test_servable_only_real_images_inside_the_root(root: Path) -> None:
    (root / "fake.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "drawing.svg").write_text("<svg onload='alert(1)'/>")
    (root / "dir.png").mkdir()
    assert servable_image_path(str(root / "sub" / "dog.png")) == root / "sub" / "dog.png"
    assert servable_image_path("sub/dog.png") == root / "sub" / "dog.png"
    for refused in (
        None,
        "",
        str(root.parent / "secret.png"),
        "../secret.png",
        "fake.png",
        "drawing.svg",
        "dir.png",
        "missing.png",
        "sub/dog.png\x00.png",
    ):
        assert servable_image_path(refused) is None, refused


def test_servable_with_explicit_roots(root: Path, tmp_path: Path) -> None:
    secret = str(tmp_path / "secret.png")
    assert servable_image_path(secret) is None
    assert servable_image_path(secret, [root, tmp_path]) == tmp_path / "secret.png"
    assert servable_image_path(secret, []) is None


def test_recorded_roots_are_served_after_the_configured_one(engine: Engine, root: Path, tmp_path: Path) -> None:
    assert image_roots(engine) == [root]
    with writer(engine).begin() as connection:
        record_image_root(connection, tmp_path)
        record_image_root(connection, tmp_path / ".")
    with writer(engine).begin() as connection:
        record_image_root(connection, root)
    assert image_roots(engine) == [root, tmp_path]
    assert servable_image_path(str(tmp_path / "secret.png"), image_roots(engine)) == tmp_path / "secret.png"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://images.example.org/a.png", True),
        ("HTTP://images.example.org/a.png", True),
        ("http://localhost:8080/admin", True),
        ("ftp://images.example.org/a.png", False),
        ("javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        ("file:///etc/passwd", False),
        ("https:///no-host.png", False),
        ("//images.example.org/a.png", False),
        ("https://evil.org\\@images.example.org/a.png", False),
        ("https://images.example.org/a b.png", False),
        ("https://images.example.org:99999/a.png", False),
        ("", False),
    ],
)
def test_any_http_host_without_an_allow_list(monkeypatch: pytest.MonkeyPatch, url: str, allowed: bool) -> None:
    monkeypatch.delenv("IFL_IMAGE_HOSTS", raising=False)
    assert image_url_allowed(url) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://images.example.org/a.png", True),
        ("https://cdn.example.net/a.png", False),
        ("https://evilcdn.example.net/a.png", False),
        ("https://a.b.cdn.example.net/a.png", True),
        ("https://example.net/a.png", False),
        ("https://evilcdn.example.net.attacker.org/a.png", False),
        ("http://localhost/a.png", False),
        ("http://127.0.0.1/a.png", False),
        ("https://images.example.org@127.0.0.1/a.png", False),
        ("https://images.example.org.attacker.org/a.png", False),
    ],
)
def test_allow_list_of_hosts(monkeypatch: pytest.MonkeyPatch, url: str, allowed: bool) -> None:
    monkeypatch.setenv("IFL_IMAGE_HOSTS", " Images.Example.org, *.cdn.example.net ,")
    assert image_url_allowed(url) is allowed
