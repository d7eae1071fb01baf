"""The name registry, including deferred entries (modules imported on first use)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from gnnrec.errors import ConfigError
from gnnrec.registry import Registry


def _module_registering(reg: Registry[object], name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake module that registers ``name`` in ``reg`` when imported."""
    mod_name = f"_gnnrec_test_deferred_{name}"

    def importer(module: str) -> types.ModuleType:
        assert module == mod_name
        reg.register(name, description=f"{name} from {module}")(object())
        mod = types.ModuleType(module)
        sys.modules[module] = mod
        return mod

    monkeypatch.setattr("importlib.import_module", importer)
    return mod_name


def test_deferred_entry_is_listed_and_imported_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("eager")(object())
    mod = _module_registering(reg, "lazy", monkeypatch)
    reg.defer(mod, "lazy")
    assert reg.names() == ["eager", "lazy"]
    assert "lazy" in reg
    assert reg.meta("lazy") == {"description": f"lazy from {mod}"}
    assert reg.names() == ["eager", "lazy"]  # listed once after the import


def test_deferred_name_clashes_and_broken_promises_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("a")(object())
    with pytest.raises(ValueError, match="already registered"):
        reg.defer("somewhere", "a")
    monkeypatch.setattr("importlib.import_module", lambda module: types.ModuleType(module))
    reg.defer("empty_module", "b")
    with pytest.raises(RuntimeError, match="did not register"):
        reg.get("b")
    with pytest.raises(ConfigError, match="unknown thing 'c'"):
        reg.get("c")


def test_listing_models_does_not_import_torch_geometric() -> None:
    code = (
        "import sys; from gnnrec.models import MODELS; "
        "assert {'rgcn', 'graphsage'} <= set(MODELS.names()); "
        "assert 'torch_geometric' not in sys.modules, 'imported too early'; "
        "MODELS.get('rgcn'); assert 'torch_geometric' in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
