"""Offline CPU features of a prompt for the learned router: hashed words, task, length.

Hashing needs no vocabulary (nothing to fit, store or download): the same text maps to the same
columns on any machine and Python version (crc32, not Python's salted `hash`). Word uni- and
bigrams of the prompt's head and tail (long prompts are clipped: the instructions and the
question are usually there, and it bounds decision time) are hashed into `n_features` columns,
l2-normalised; then the task (one-hot over the tasks seen when fitting; an unknown or missing
task is all zeros) and the log length of the whole prompt are appended; with an embedding
model (`policies.families.embeddings`, optional) the prompt's sentence embedding follows.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

N_FEATURES = 2**12
HEAD, TAIL = 2000, 1000
_WORD = re.compile(r"\w\w+")


class PromptFeatures:
    def __init__(
        self, tasks: Sequence[str], n_features: int = N_FEATURES, embedding: str | None = None
    ) -> None:
        self.tasks = list(tasks)
        self.n_features = n_features
        self._task_col = {task: n_features + i for i, task in enumerate(self.tasks)}
        self.embedding = embedding
        self.encoder = None
        if embedding is not None:
            from tradeoff.policies.families.embeddings import load_encoder

            self.encoder = load_encoder(embedding)

    @property
    def _base(self) -> int:
        return self.n_features + len(self.tasks) + 1

    @property
    def width(self) -> int:
        return self._base + (self.encoder.dim if self.encoder is not None else 0)

    def one(self, prompt: str, task: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of one prompt's sparse feature row."""
        cols, vals = self._hashed(prompt, task)
        if self.encoder is None:
            return cols, vals
        dense = self.encoder.encode([prompt])[0].astype(np.float64)
        return (
            np.concatenate([cols, np.arange(self._base, self._base + len(dense))]),
            np.concatenate([vals, dense]),
        )

    def _hashed(self, prompt: str, task: str | None) -> tuple[np.ndarray, np.ndarray]:
        text = prompt if len(prompt) <= HEAD + TAIL else prompt[:HEAD] + " " + prompt[-TAIL:]
        words = _WORD.findall(text.lower())
        grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        counts: dict[int, float] = {}
        for gram in grams:
            col = zlib.crc32(gram.encode()) % self.n_features
            counts[col] = counts.get(col, 0.0) + 1.0
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        vals = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if vals.size:
            vals /= np.sqrt(np.dot(vals, vals))
        extra_cols = [self._base - 1]
        extra_vals = [math.log1p(len(prompt)) / 10.0]  # about [0, 1] up to ~20k characters
        if task is not None and task in self._task_col:
            extra_cols.append(self._task_col[task])
            extra_vals.append(1.0)
        return np.concatenate([cols, extra_cols]), np.concatenate([vals, extra_vals])

    def transform(self, prompts: Sequence[str], tasks: Sequence[str | None]) -> sp.csr_matrix:
        if self.encoder is None:
            return self._sparse(prompts, tasks, self.width)
        hashed = self._sparse(prompts, tasks, self._base)
        dense = sp.csr_matrix(self.encoder.encode(list(prompts)).astype(np.float64))
        return sp.hstack([hashed, dense], format="csr")

    def _sparse(
        self, prompts: Sequence[str], tasks: Sequence[str | None], width: int
    ) -> sp.csr_matrix:
        indptr, indices, data = [0], [], []
        for prompt, task in zip(prompts, tasks, strict=True):
            cols, vals = self._hashed(prompt, task)
            indices.append(cols)
            data.append(vals)
            indptr.append(indptr[-1] + len(cols))
        return sp.csr_matrix(
            (
                np.concatenate(data) if data else np.zeros(0),
                np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
                np.array(indptr),
            ),
            shape=(len(prompts), width),
        )
