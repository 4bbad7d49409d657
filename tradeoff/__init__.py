"""tradeoff: measure LLMs, fit a routing policy to a stated requirement, serve it as a proxy.

The one installed name. Its rooms follow the pipeline: `tradeoff.evals` (store, importers,
graders, eval runner), `tradeoff.policies` (families, fitting, replay, the loop),
`tradeoff.router` (the proxy) and `tradeoff.dashboard` (the Streamlit app); each may import
only the rooms before it (the contract in `.importlinter`). Importing this package has no side
effects: the command tree is assembled by `main`.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the `tradeoff` command with `argv` (default: the process's) and return its exit code."""
    from tradeoff.cli import main as run

    return run(argv)
