"""Every package has an explicit public surface (``__all__``), served lazily (PEP 562).

What mypy reads (the ``if TYPE_CHECKING:`` imports), what ``__all__`` promises and what
``getattr`` returns at run time are the same names and the same objects. And importing the
packages imports none of their modules: the CLI and the gunicorn target import ``orchestrator``
before gevent patches the process, so ssl, requests or pykka must not come in with it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from backends._lazy import lazy_exports

ROOT = Path(__file__).resolve().parents[2]

PACKAGES = (
    "actors",
    "backends",
    "backends.simulated",
    "orchestrator",
    "orchestrator.frontend",
    "orchestrator.frontend.protocol",
    "orchestrator.loadtest",
    "orchestrator.ops",
)

#: Modules that must not be imported before gevent patches (ssl, sockets, threads), or that
#: bring such modules in; none of them is needed to import a package.
PATCH_SENSITIVE = ("ssl", "requests", "urllib3", "pykka", "geventhttpclient", "gevent", "statsd")


def _declared(package: str) -> dict[str, str]:
    """Public name -> the module mypy imports it from, read from the package's
    ``if TYPE_CHECKING:`` block."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    tree = ast.parse(init.read_text(encoding="utf-8"))
    declared: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                assert statement.module is not None
                for alias in statement.names:
                    assert alias.asname is None, ast.unparse(statement)
                    declared[alias.name] = statement.module
    return declared


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_what_the_type_checker_sees(package):
    """``__all__`` lists exactly the names the ``TYPE_CHECKING`` block imports, once each."""
    public = importlib.import_module(package).__all__
    assert len(public) == len(set(public)), "a name is listed twice"
    assert set(public) == set(_declared(package))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_the_object_its_module_defines(package):
    """Each name resolves through the package to the very object of its defining module
    (classes and functions really are defined there, not re-exported from elsewhere), and
    a module that declares its own ``__all__`` lists it as public too."""
    module = importlib.import_module(package)
    for name, source in _declared(package).items():
        value = getattr(module, name)
        if isinstance(value, ModuleType):  # a public submodule, e.g. orchestrator.plans
            assert source == package
            assert value is sys.modules[f"{package}.{name}"], name
            continue
        defining = importlib.import_module(source)
        assert value is getattr(defining, name), name
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == source, f"{package}.{name} comes from {value.__module__}"
        assert name in getattr(defining, "__all__", (name,)), f"{source} keeps {name} private"


@pytest.mark.parametrize("package", PACKAGES)
def test_star_import_and_dir_offer_the_surface(package):
    """``from package import *`` binds every public name; ``dir`` lists them all."""
    module = importlib.import_module(package)
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # noqa: S102 - a fixed statement over our own packages
    namespace.pop("__builtins__")
    assert namespace.keys() == set(module.__all__)
    assert all(namespace[name] is getattr(module, name) for name in module.__all__)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", PACKAGES)
def test_anything_else_is_an_attribute_error(package):
    """A name outside the surface is an ``AttributeError`` naming the package (so ``hasattr``
    is false), and ``from package import submodule`` still imports the submodule."""
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=rf"module '{package}' has no attribute 'Nope'"):
        module.Nope  # noqa: B018 - the attribute access is the test
    assert not hasattr(module, "nope")


def test_submodules_still_import_through_the_package():
    """The fallback of ``from package import name`` to a submodule is untouched."""
    from orchestrator.frontend import problems
    from orchestrator.ops import gc_tuning

    assert gc_tuning is sys.modules["orchestrator.ops.gc_tuning"]
    assert problems is sys.modules["orchestrator.frontend.problems"]


def test_a_name_exported_twice_is_refused():
    """Two sources for one name (or a name that is also a public submodule) is a mistake
    caught when the package is imported, not a silent first-wins."""
    with pytest.raises(ValueError, match="'Step' is exported twice"):
        lazy_exports("pkg", {"plan": ("Step",), "other": ("Step",)})
    with pytest.raises(ValueError, match="'plans' is exported twice"):
        lazy_exports("pkg", {"plan": ("plans",)}, modules=("plans",))


_PROBE = """
import json, sys
before = set(sys.modules)
import {packages}
print(json.dumps({{
    "before": sorted(before),
    "after": sorted(sys.modules),
    "dirs": {{name: dir(sys.modules[name]) for name in {packages_list!r}}},
}}))
"""


def test_importing_the_packages_imports_nothing_patch_sensitive():
    """In a fresh, unpatched interpreter, importing every package loads the package
    ``__init__`` modules and the lazy helper, nothing else of ours and none of
    ``PATCH_SENSITIVE``; ``dir`` already lists the surface, unloaded."""
    probe = _PROBE.format(packages=", ".join(PACKAGES), packages_list=list(PACKAGES))
    result = subprocess.run(  # noqa: S603 - this interpreter on a fixed snippet
        [sys.executable, "-c", probe],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    before, after = set(seen["before"]), set(seen["after"])
    assert not before & set(PATCH_SENSITIVE), "the interpreter loads them at start-up"
    assert not after & set(PATCH_SENSITIVE)
    ours = {name for name in after if name.split(".")[0] in {"actors", "backends", "orchestrator"}}
    assert ours == {*PACKAGES, "backends._lazy"}
    for package in PACKAGES:
        public = set(importlib.import_module(package).__all__)
        assert public <= set(seen["dirs"][package]), package
