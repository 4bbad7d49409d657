from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeoff.evals.errors import MissingFileError
from tradeoff.evals.store import open_store
from tradeoff.policies import PolicyArtifact, load_artifact, save_artifact
from tradeoff.policies.artifact import store_artifact, stored_artifact
from tradeoff.policies.errors import PolicyFileError
from tradeoff.policies.families.single import SinglePolicy


def artifact() -> PolicyArtifact:
    return PolicyArtifact.from_policy(
        "p", SinglePolicy("m"), dataset="d", data_hash="h", metrics={"n": 3}
    )


def test_file_has_the_documented_fields(tmp_path: Path) -> None:
    doc = json.loads(save_artifact(artifact(), tmp_path / "p.json").read_text())
    assert list(doc) == [
        "version", "name", "family", "params", "models", "dataset", "data_hash",
        "requirement", "baseline", "metrics", "created_at",
    ]  # fmt: skip
    assert doc["version"] == 1 and doc["params"] == {"model": "m"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"version": 9, "name": "p", "family": "single", "params": {}}', "version 9"),
        ('{"version": 1, "name": "p", "params": {}}', "missing family"),
        ('{"version": 1, "name": "p", "family": "magic", "params": {}}', "unknown policy family"),
        ('{"version": 1, "name": "p", "family": "single", "params": {}}', "needs params"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(PolicyFileError) as info:
        load_artifact(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_is_a_usage_mistake(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"p\.json not found; create one with `tradeoff fit"):
        load_artifact(tmp_path / "p.json")


def test_tampered_learned_coefficients_fail_their_hash(tmp_path: Path) -> None:
    from tests.policies.families.test_contract import _learned

    policy = _learned(["a", "b"])
    doc = PolicyArtifact.from_policy("l", policy).to_dict()
    data = doc["params"]["coef"]["data"]
    doc["params"]["coef"]["data"] = ("B" if data[0] != "B" else "C") + data[1:]
    path = tmp_path / "l.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PolicyFileError, match="sha256"):
        load_artifact(path)


def test_store_round_trip(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    a = artifact()
    assert store_artifact(store, a) == store_artifact(store, a)  # same content, same id
    assert stored_artifact(store, "p") == a
    assert stored_artifact(store, a.policy_id) == a
    with pytest.raises(PolicyFileError, match="no policy 'q'"):
        stored_artifact(store, "q")


def test_fit_options_is_exported_with_the_package_without_fitting_imports() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tradeoff.policies as p; "
        "from tradeoff.policies.fit.options import FitOptions; "
        "assert p.FitOptions is FitOptions and 'FitOptions' in p.__all__; "
        "assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
