"""The retry policy: whether a failed attempt is tried again, and when (exponential backoff with jitter).

Pure and deterministic given its random source, so the worker and the tests agree on every delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiconsole.platform.errors import ConfigError


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` attempts per photo; attempt n waits base * 2**(n-1) seconds, +-jitter, capped."""

    max_attempts: int = 3
    base_delay_s: float = 2.0
    max_delay_s: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts is {self.max_attempts}; a photo needs at least 1 attempt.",
                              hint="Set the organization's max retries to 1 or more.")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ConfigError(
                f"Retry delays base={self.base_delay_s}s, max={self.max_delay_s}s are inconsistent.",
                hint="Use 0 <= base delay <= max delay.")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"Retry jitter {self.jitter} is outside 0..1.",
                              hint="Use a fraction such as 0.2 (delays vary by +-20%).")

    def should_retry(self, *, attempts: int, retryable: bool) -> bool:
        """Whether a photo whose `attempts`-th attempt just failed gets another one."""
        return retryable and attempts < self.max_attempts

    def delay_s(self, attempts: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1-based), jittered, never above max_delay_s."""
        # Cap the exponent first: 2**attempts overflows a float long before anyone waits that long.
        exponent = min(max(attempts, 1) - 1, 62)
        delay = min(self.max_delay_s, self.base_delay_s * (2.0 ** exponent))
        if self.jitter:
            # Jitter spreads retries of photos that failed together (a 429 burst) over time.
            u = (rng or random).uniform(-1.0, 1.0)
            delay *= 1.0 + self.jitter * u
        return max(0.0, min(self.max_delay_s, delay))

    def next_attempt_at(self, now: datetime, attempts: int, rng: random.Random | None = None) -> datetime:
        """When the next attempt may start: `now` plus delay_s(attempts)."""
        return now + timedelta(seconds=self.delay_s(attempts, rng=rng))
