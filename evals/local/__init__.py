"""The local tier: vLLM-served models and their GPU-time cost model."""
