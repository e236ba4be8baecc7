"""Money is stored as integer micro-dollars; these convert at the edges, never through float sums."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_USD = 1_000_000


def usd_to_micros(usd: Decimal | str | int) -> int:
    """Exact USD -> micro-dollars, rounding half up at the sixth decimal place."""
    value = Decimal(str(usd)) * MICROS_PER_USD
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_usd(micros: int | None) -> Decimal:
    """Micro-dollars -> Decimal USD with six decimal places."""
    return (Decimal(int(micros or 0)) / MICROS_PER_USD).quantize(Decimal("0.000001"))


def format_usd(micros: int | None, *, places: int = 2) -> str:
    """A display string such as $1,234.57 (or $0.0042 for small amounts when places=4)."""
    value = micros_to_usd(micros)
    q = Decimal(1).scaleb(-places)
    return f"${value.quantize(q, rounding=ROUND_HALF_UP):,}"
