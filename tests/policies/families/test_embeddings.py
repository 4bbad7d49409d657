"""The optional sentence-embedding featurizer, on a tiny encoder built locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.policies.families.tiny_encoder import build_tiny_encoder
from tests.policies.synthetic import build_store
from tradeoff.policies import RouteRequest, load_artifact, save_artifact
from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families.embeddings import load_encoder, read_safetensors, resolve
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions

TEXTS = ["prove the theorem", "what is the capital of france", "write a python function"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc") / "tiny"))


def test_embeddings_are_unit_vectors_and_batching_does_not_change_them(encoder_dir: str) -> None:
    enc = load_encoder(encoder_dir)
    together = enc.encode(TEXTS)
    assert together.shape == (3, 16)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([enc.encode([t]) for t in TEXTS])  # no padding at all
    assert np.allclose(together, alone, atol=1e-5)  # padding is masked out
    assert not np.allclose(together[0], together[1])


def test_safetensors_round_trip(encoder_dir: str) -> None:
    weights = read_safetensors(Path(encoder_dir) / "model.safetensors")
    assert weights["embeddings.word_embeddings.weight"].shape[1] == 16


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyParamsError, match="is not installed"):
        resolve("package:no_such_model_package")
    with pytest.raises(PolicyParamsError, match=r"no config\.json"):
        resolve(str(tmp_path))


def test_a_fit_with_embeddings_serves_the_same_features(encoder_dir: str, tmp_path: Path) -> None:
    def prompt(task: str, i: int) -> str:
        return "prove the theorem with a formal proof" if i % 2 else f"add number {i}"

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(rng.random() < (0.9 if model == "strong" or i % 2 == 0 else 0.1))

    store = build_store(
        tmp_path / "e.duckdb",
        tasks={"only": 200},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        prompt=prompt,
    )
    report = fit_policy(store, FitOptions(
        "synth", "accuracy >= 85% of baseline", baseline="strong",
        families=("single", "learned"), embedding_model=encoder_dir,
    ))  # fmt: skip
    assert report.family == "learned" and report.metrics["savings_vs_baseline"] > 0.3
    assert report.artifact is not None
    assert report.artifact.params["embedding_model"] == encoder_dir
    path = save_artifact(report.artifact, tmp_path / "p.json")
    policy = load_artifact(path).policy()
    requests = [RouteRequest(prompt("only", i), "only") for i in range(6)]
    assert policy.plan_many(requests) == [policy.plan(r) for r in requests]
    assert [p.models[0] for p in policy.plan_many(requests)][:2] == ["cheap", "strong"]
