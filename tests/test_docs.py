"""The architecture page names every module of the device package, so a new or split module is documented."""

from __future__ import annotations

from tests.conftest import ROOT


def test_every_device_module_is_named_in_the_architecture_page() -> None:
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "edge").rglob("*.py")
                     if p.name != "__init__.py")
    assert len(modules) > 30  # the package itself, not an empty glob
    # A row names a module by its path, or beside a sibling by its file name alone (`mqtt_params.py`).
    missing = [m for m in modules if f"`{m}`" not in page and f"`{m.rsplit('/', 1)[-1]}`" not in page]
    assert not missing, f"docs/ARCHITECTURE.md does not name: {', '.join(missing)}"
