"""A tiny BERT-family sentence encoder built locally (random weights, a small vocabulary), in
the folder layout `policies.families.embeddings` loads: nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from tradeoff.policies.families.embeddings import write_safetensors

WORDS = [
    "what",
    "is",
    "the",
    "of",
    "a",
    "to",
    "and",
    "in",
    "prove",
    "theorem",
    "formal",
    "proof",
    "add",
    "number",
    "question",
    "write",
    "function",
    "list",
    "reverse",
    "python",
    "capital",
    "france",
    "who",
    "wrote",
    "hamlet",
]


def build_tiny_encoder(folder: Path, hidden: int = 16, layers: int = 2, heads: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
        "intermediate_size": 2 * hidden, "max_position_embeddings": 160, "type_vocab_size": 2,
        "vocab_size": len(vocab), "layer_norm_eps": 1e-12,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.2, size=shape).astype(np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": w(len(vocab), hidden),
        "embeddings.position_embeddings.weight": w(160, hidden),
        "embeddings.token_type_embeddings.weight": w(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            tensors[f"{p}.attention.self.{part}.weight"] = w(hidden, hidden)
            tensors[f"{p}.attention.self.{part}.bias"] = w(hidden)
        tensors[f"{p}.attention.output.dense.weight"] = w(hidden, hidden)
        tensors[f"{p}.attention.output.dense.bias"] = w(hidden)
        tensors[f"{p}.intermediate.dense.weight"] = w(2 * hidden, hidden)
        tensors[f"{p}.intermediate.dense.bias"] = w(2 * hidden)
        tensors[f"{p}.output.dense.weight"] = w(hidden, 2 * hidden)
        tensors[f"{p}.output.dense.bias"] = w(hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{p}.{norm}.weight"] = np.ones(hidden, np.float32)
            tensors[f"{p}.{norm}.bias"] = np.zeros(hidden, np.float32)
    write_safetensors(folder / "model.safetensors", tensors)
    return folder
