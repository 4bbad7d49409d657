"""`--max-cost`: stop before a call could push the run's spend over the budget.

Each call reserves a conservative estimate before it starts (its prompt tokens at the input
price plus `max_tokens`, or when unset the larger of 1024 and twice the longest answer seen
from that model, at the output price) and settles to its real cost when it ends. A call whose
reservation does not fit what is left waits for the calls in flight to settle (near the limit
fewer calls run at once); one that does not fit with none in flight is not made, and the run
stops. So spend stays within budget as long as no answer is longer than its estimate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from tradeoff.evals.errors import TradeoffError


class BudgetExhaustedError(TradeoffError):
    """The run stopped at --max-cost (after printing what it recorded)."""

    exit_code = 3


class Budget:
    """Reservations against a USD limit. `extra_spend` adds costs paid elsewhere (a judge)."""

    def __init__(self, max_usd: float, *, extra_spend: Callable[[], float] = lambda: 0.0) -> None:
        self.max_usd = max_usd
        self.settled = 0.0
        self.reserved = 0.0
        self.extra_spend = extra_spend
        self.longest_answer: dict[str, int] = defaultdict(int)

    @property
    def spent(self) -> float:
        return self.settled + self.extra_spend()

    def estimate(
        self,
        model: str,
        prices: tuple[float, float],
        prompt_tokens: int,
        max_tokens: int | None,
    ) -> float:
        answer = max_tokens or max(1024, 2 * self.longest_answer[model])
        return prompt_tokens * prices[0] + answer * prices[1]

    def reserve(self, estimate: float) -> bool:
        """Hold `estimate` if it fits in what is left; False (nothing held) if not."""
        if self.spent + self.reserved + estimate > self.max_usd:
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: float, actual: float, model: str, completion_tokens: int) -> None:
        self.reserved -= estimate
        self.settled += actual
        self.longest_answer[model] = max(self.longest_answer[model], completion_tokens)

    def stop_message(self, model: str, estimate: float) -> str:
        """Why the run stops: the next call (to `model`, reserving `estimate`) does not fit."""
        left = max(0.0, self.max_usd - self.spent - self.reserved)
        return (
            f"stopped before exceeding --max-cost ${self.max_usd:g}: spent ${self.spent:.6f} "
            f"of --max-cost ${self.max_usd:g}; the next call ({model}) needs up to "
            f"${estimate:.6f} and ${left:.6f} is left; rerun with a higher --max-cost to "
            "continue (recorded outcomes are not called again)"
        )
