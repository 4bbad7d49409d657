"""Installed from its wheel, the project is `tradeoff` and nothing else at top level: the names
`evals`, `router`, `policies` and `dashboard` stay free for other distributions."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FREE = ("evals", "router", "policies", "dashboard")
OURS = (
    "tradeoff",
    "tradeoff.cli",
    "tradeoff.evals.store",
    "tradeoff.evals.runner",
    "tradeoff.policies",
    "tradeoff.policies.fit.fitting",
    "tradeoff.router.app",
    "tradeoff.dashboard.queries",
)

# Run by the fresh venv's interpreter with -I (no PYTHONPATH, no user site, no working
# directory): sys.argv[1] is a folder to append to sys.path ("" for none), then the names to
# look up. Prints, per name, where it was found (None when it is not importable) and, for the
# tradeoff names, the file it was imported from.
PROBE = """
import importlib, importlib.util, json, sys
if sys.argv[1]:
    sys.path.append(sys.argv[1])
out = {"path": sys.path}
for name in sys.argv[2:]:
    spec = importlib.util.find_spec(name)
    if spec is None:
        out[name] = None
    elif name.startswith("tradeoff"):
        out[name] = importlib.import_module(name).__file__
    else:
        out[name] = spec.origin or list(spec.submodule_search_locations or [])
print(json.dumps(out))
"""


def _probe(python: Path, extra: str, names: tuple[str, ...]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-I", "-c", PROBE, extra, *names],
        capture_output=True, text=True, timeout=300, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel installed into a plain venv: its python and its site-packages folder."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("tradeoff-*.whl")

    # A plain venv: no system site-packages, no pip, so nothing of the dev checkout.
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    site = Path(
        subprocess.run(
            [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) == [
        "tradeoff"
    ]
    return python, site


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(installed: tuple[Path, Path]) -> None:
    python, site = installed
    # Alone, the venv holds the wheel and the standard library only: the four names are free,
    # and `tradeoff` is the installed copy (its subpackages need the dependencies, below).
    alone = _probe(python, "", (*FREE, "tradeoff"))
    path = [str(p) for p in alone["path"]]
    assert not any(p == str(REPO) or p.startswith(f"{REPO}/") for p in path), path
    assert {name: alone[name] for name in FREE} == dict.fromkeys(FREE)
    assert str(alone["tradeoff"]).startswith(f"{site}/"), alone["tradeoff"]

    # With the dependencies (the dev venv's site-packages appended: its folder alone, so none
    # of its .pth files put the checkout on the path), every package imports from the wheel.
    deps = sysconfig.get_paths()["purelib"]
    found = _probe(python, deps, (*FREE, *OURS))
    for name in OURS:
        assert str(found[name]).startswith(f"{site}/"), (name, found[name])
    for name in FREE:  # whatever else may provide these names, the wheel does not
        assert str(site) not in json.dumps(found[name]), (name, found[name])


@pytest.mark.slow
def test_the_readmes_first_command_runs_the_demo_with_an_empty_home(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """`pip install . && tradeoff demo` as the README's first command has it: the console
    script of the installed wheel, an empty HOME, run from an empty folder. The dependencies
    come from the dev venv (its site-packages folder alone, through a .pth line)."""
    python, site = installed
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [str(python.parent / "tradeoff"), "demo"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "as policies demo-llmrouter, demo-routerarena" in done.stdout
    assert (home / ".local" / "share" / "tradeoff" / "tradeoff.duckdb").is_file()
    assert "[" in done.stderr and "done" in done.stderr  # progress while it worked
