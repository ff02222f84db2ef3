"""What a user gets from the package: metadata, a documented public API, an import that costs
nothing it does not need, backend crashes counted and failing tests."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import tomllib
from importlib.metadata import metadata, version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

import asyncresolve
import asyncresolve.backends
import asyncresolve.backends.iterative
import asyncresolve.testing
import asyncresolve.testing.peers
from asyncresolve import Answer, Resolver
from asyncresolve.backends.base import Backend, NotMine, Query

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asyncresolve"
PUBLIC_MODULES = [asyncresolve, asyncresolve.backends, asyncresolve.backends.iterative, asyncresolve.testing,
                  asyncresolve.testing.peers]


# -- metadata ----------------------------------------------------------------------------
def test_one_version_and_an_spdx_licence_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]
    assert "version" not in project
    assert version("asyncresolve") == asyncresolve.__version__
    assert project["license"] == "MIT"  # an SPDX expression, not the deprecated table
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert metadata("asyncresolve")["License-Expression"] == "MIT"


def test_supported_pythons_are_what_ci_runs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "Programming Language :: Python :: 3.10" not in project["classifiers"]
    assert {"Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.13"} <= set(
        project["classifiers"])
    assert sys.version_info >= (3, 11)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "3.11" in ci
    assert "3.13" in ci


def test_type_and_lint_checks_are_strict() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    mypy = tool["mypy"]
    assert mypy["strict"] is True
    assert mypy["warn_unused_ignores"] is True
    # missing imports are ignored only for named third-party modules, never globally: a
    # first-party import of a module that does not exist must stay an error
    assert "ignore_missing_imports" not in mypy
    for override in mypy.get("overrides", []):
        if override.get("ignore_missing_imports"):
            modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
            assert not [m for m in modules if m.split(".")[0] == "asyncresolve"], modules
    assert {"ASYNC", "BLE", "PT"} <= set(tool["ruff"]["lint"]["select"])


def test_runtime_dependencies_are_the_used_ones_and_bounded() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in project["dependencies"]}
    assert {"pycares", "anyio", "dnspython", "idna"} <= names
    assert "aiodns" not in names  # never imported by the library: the benchmarks' contender only
    pycares = next(dep for dep in project["dependencies"] if dep.startswith("pycares"))
    assert "<" in pycares, "the c-ares backend uses pycares's private cffi layer: pin the tested range"
    lines = (ROOT / ".ci" / "minimum-versions.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    lower_bounds = {dep.split(">=")[0]: dep.split(">=")[1].split(",")[0] for dep in project["dependencies"]}
    assert set(pins) == set(lower_bounds)  # CI tests the lower bound of every dependency
    assert all(Version(pins[name]) == Version(lower) for name, lower in lower_bounds.items()), (pins, lower_bounds)
    assert set(project["optional-dependencies"]["testing"]) >= {"pytest>=8", "pytest-asyncio>=1.0"}


# -- public API --------------------------------------------------------------------------
def _public_objects() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for module in PUBLIC_MODULES:
        assert module.__doc__, module.__name__
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((f"{module.__name__}.{name}", obj))
                if inspect.isclass(obj):
                    for attr, member in vars(obj).items():
                        if attr.startswith("_"):
                            continue
                        function = member.fget if isinstance(member, property) else member
                        if isinstance(function, (staticmethod, classmethod)):
                            function = function.__func__
                        if inspect.isfunction(function):
                            found.append((f"{module.__name__}.{name}.{attr}", (obj, attr)))
    return found


def _doc(obj: Any) -> str | None:
    if isinstance(obj, tuple):  # a method: its own docstring or the one it overrides
        cls, attr = obj
        return inspect.getdoc(getattr(cls, attr)) or next(
            (inspect.getdoc(getattr(base, attr)) for base in cls.__mro__[1:] if hasattr(base, attr)), None)
    if inspect.isclass(obj):
        own = obj.__dict__.get("__doc__")
        # a dataclass without a docstring gets its signature as __doc__: that is not documentation
        return None if not own or own.startswith(f"{obj.__name__}(") else own
    return inspect.getdoc(obj)


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for name, obj in _public_objects() if not _doc(obj)]
    assert not missing, f"public names without a docstring: {missing}"


def test_help_reads_as_the_api_reference() -> None:
    text = subprocess.run([sys.executable, "-c", "import asyncresolve; help(asyncresolve)"],
                          capture_output=True, text=True, timeout=60, env={"PAGER": "cat", "TERM": "dumb"}).stdout
    for needle in ("Resolver", "NXDomain", "MXRecord", "A mail exchanger", "TTLCache", "FallthroughPolicy"):
        assert needle in text


def test_iterative_backend_is_a_backend_like_the_others() -> None:
    from asyncresolve.backends import IterativeBackend
    from asyncresolve.backends.iterative.backend import IterativeBackend as Defined

    assert IterativeBackend is Defined
    assert "IterativeBackend" in asyncresolve.backends.__all__
    assert set(asyncresolve.backends.iterative.__all__) >= {"IterativeBackend", "IterativeStats", "TraceStep",
                                                            "TraceResult"}
    internals = {"Resolution", "SendQuery", "Done", "NeedSubResolution", "EngineConfig", "Infrastructure",
                 "Delegation", "ServerStats"}
    assert not internals & set(asyncresolve.backends.iterative.__all__)


def test_no_private_names_exported() -> None:
    for module in PUBLIC_MODULES:
        assert not [n for n in module.__all__ if n.startswith("_")], module.__name__
        assert all(hasattr(module, n) for n in module.__all__), module.__name__
    assert not hasattr(asyncresolve.testing.peers, "_LIVE")


# -- import cost and the test kit --------------------------------------------------------
def test_import_asyncresolve_loads_no_test_kit_and_no_iterative_resolver() -> None:
    code = ("import sys, json, asyncresolve, asyncresolve.backends; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('asyncresolve', 'pytest', '_pytest', 'pytest_asyncio'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    assert "asyncresolve" in loaded
    assert not [m for m in loaded if m.startswith(("asyncresolve.testing", "pytest", "_pytest"))], loaded
    assert not [m for m in loaded if m.startswith("asyncresolve.backends.iterative")], loaded


def test_runtime_code_never_imports_the_test_kit_at_module_level() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: the demo imports the lab when it runs
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else [f"{'.' * node.level}{node.module or ''}"]
                names += [f"{node.module or ''}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any("testing" in name.split(".") for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_the_pytest_plugin_imports_only_pytest_when_loaded() -> None:
    code = ("import sys, json; import asyncresolve.testing.pytest_plugin; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('asyncresolve', 'dns.zone')))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    kit = [m for m in loaded if m.startswith(("asyncresolve.testing.", "dns.zone"))]
    assert kit == ["asyncresolve.testing.pytest_plugin"]


# -- backend crashes ---------------------------------------------------------------------
class CrashingBackend(Backend):
    name = "crashy"

    async def resolve(self, query: Query) -> Answer:
        if query.name == "pass.test.":
            raise NotMine
        raise ZeroDivisionError("a bug")


@pytest.mark.backend_crash_expected
async def test_a_backend_crash_is_counted_visible_and_falls_through(scripted: Any) -> None:
    fallback = scripted(name="fallback", table={("www.example.test.", "A"): "192.0.2.1"})
    async with Resolver([CrashingBackend(), fallback], cache=None) as resolver:
        answer = await resolver.resolve("www.example.test", "A")
        assert answer.source == "fallback"
        with pytest.raises(asyncresolve.NoBackend):
            await resolver.resolve("pass.test", "A")  # NotMine is not a crash
        assert resolver.stats.backends["crashy"].crashes == 1
        assert resolver.stats.crashes == 1
        assert resolver.stats.snapshot()["crashes"] == 1
        assert resolver.stats.snapshot()["backends"]["crashy"]["crashes"] == 1


CRASHING_TESTS = """
import pytest
from asyncresolve import Resolver
from asyncresolve.backends.base import Backend

class Crashing(Backend):
    name = "crashing"
    async def resolve(self, query):
        raise KeyError("bug")

async def test_crash_goes_unnoticed_by_the_test_itself():
    async with Resolver([Crashing()]) as resolver:
        with pytest.raises(Exception):
            await resolver.resolve("www.example.test")

@pytest.mark.backend_crash_expected
async def test_crash_on_purpose():
    async with Resolver([Crashing()]) as resolver:
        with pytest.raises(Exception):
            await resolver.resolve("www.example.test")

async def test_no_crash():
    pass
"""


@pytest.mark.backend_crash_expected  # the inner session's crashes are logged in this process too
def test_the_suite_fails_a_test_during_which_a_backend_crashed(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
                     "markers = backend_crash_expected: x\n")
    pytester.makepyfile(test_inner=CRASHING_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_crash_goes_unnoticed_by_the_test_itself*",
                                 "a backend crashed during this test*",
                                 "*backend crashing failed on www.example.test. A: KeyError('bug')"])
