"""Dated pricing tables with their source. Every cost aiconsole records comes from here.

Prices are USD, stored as micro-dollars per unit so arithmetic stays in integers. An organization may
override a price through `provider_configs.price_overrides` ({"<model>": {"input_per_m": "0.25", ...}}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.money import usd_to_micros

VISION_SOURCE = "https://cloud.google.com/vision/pricing"
GEMINI_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"


@dataclass(frozen=True)
class VisionFeaturePrice:
    """Cloud Vision per-feature price: free units per month, then tiered price per 1,000 units."""

    feature: str
    effective: date
    free_units_per_month: int
    # (units per month up to and including this bound, USD per 1,000 units); None bound = no limit.
    tiers: tuple[tuple[int | None, Decimal], ...]
    source: str = VISION_SOURCE


@dataclass(frozen=True)
class GeminiModelPrice:
    """Gemini per-model price per 1M input and output tokens (images are input tokens)."""

    model: str
    effective: date
    input_per_m: Decimal
    output_per_m: Decimal
    source: str = GEMINI_SOURCE


VISION_PRICES: dict[str, VisionFeaturePrice] = {
    "LABEL_DETECTION": VisionFeaturePrice(
        "LABEL_DETECTION", date(2025, 1, 1), 1000,
        ((5_000_000, Decimal("1.50")), (20_000_000, Decimal("1.00")), (None, Decimal("1.00"))),
    ),
    "OBJECT_LOCALIZATION": VisionFeaturePrice(
        "OBJECT_LOCALIZATION", date(2025, 1, 1), 1000,
        ((5_000_000, Decimal("2.25")), (20_000_000, Decimal("1.50")), (None, Decimal("1.50"))),
    ),
}

GEMINI_PRICES: dict[str, GeminiModelPrice] = {
    p.model: p
    for p in (
        GeminiModelPrice("gemini-2.5-flash", date(2025, 6, 17), Decimal("0.30"), Decimal("2.50")),
        GeminiModelPrice("gemini-2.5-flash-lite", date(2025, 7, 22), Decimal("0.10"), Decimal("0.40")),
        GeminiModelPrice("gemini-2.5-pro", date(2025, 6, 17), Decimal("1.25"), Decimal("10.00")),
        GeminiModelPrice("gemini-2.0-flash", date(2025, 2, 5), Decimal("0.10"), Decimal("0.40")),
    )
}

LOCAL_MODEL = "local-analyzer-v1"
GEMINI_IMAGE_TILE = 768
GEMINI_TOKENS_PER_TILE = 258


def gemini_image_tokens(width: int, height: int) -> int:
    """Tokens Gemini 2.x bills for one image: 258 if both sides <= 384 px, else 258 per 768x768 tile."""
    if width <= 0 or height <= 0:
        raise ValidationFailed(f"Image size {width}x{height} is not valid.")
    if width <= 384 and height <= 384:
        return GEMINI_TOKENS_PER_TILE
    tiles = math.ceil(width / GEMINI_IMAGE_TILE) * math.ceil(height / GEMINI_IMAGE_TILE)
    return tiles * GEMINI_TOKENS_PER_TILE


def _override(overrides: dict[str, Any] | None, model: str, key: str, default: Decimal) -> Decimal:
    value = ((overrides or {}).get(model) or {}).get(key)
    return default if value is None else Decimal(str(value))


def gemini_cost_micros(
    model: str, *, input_tokens: int, output_tokens: int, overrides: dict[str, Any] | None = None
) -> int:
    """Cost of one Gemini call in micro-dollars, rounded half up."""
    price = GEMINI_PRICES.get(model)
    if price is None:
        raise ValidationFailed(
            f"No price is known for Gemini model '{model}'.",
            hint=f"Known models: {', '.join(sorted(GEMINI_PRICES))}; or set a price override for it.",
        )
    inp = _override(overrides, model, "input_per_m", price.input_per_m)
    out = _override(overrides, model, "output_per_m", price.output_per_m)
    usd = (Decimal(input_tokens) * inp + Decimal(output_tokens) * out) / Decimal(1_000_000)
    return usd_to_micros(usd)


def vision_cost_micros(
    units: int,
    *,
    month_units_before: int,
    feature: str = "LABEL_DETECTION",
    overrides: dict[str, Any] | None = None,
) -> int:
    """Marginal cost of `units` Vision units given how many the org already used this month (free tier first)."""
    price = VISION_PRICES[feature]
    flat = ((overrides or {}).get(feature) or {}).get("per_1000")
    total = Decimal(0)
    for i in range(month_units_before, month_units_before + units):
        n = i + 1  # the n-th unit this month
        if n <= price.free_units_per_month:
            continue
        if flat is not None:
            total += Decimal(str(flat))
            continue
        for bound, per_1000 in price.tiers:
            if bound is None or n <= bound:
                total += per_1000
                break
    return usd_to_micros(total / 1000)


def price_table_rows() -> list[dict[str, Any]]:
    """Every price with its effective date and source, for display."""
    rows: list[dict[str, Any]] = []
    for v in VISION_PRICES.values():
        for bound, per_1000 in v.tiers:
            rows.append({"provider": "google-vision", "item": v.feature, "unit": "1,000 units",
                         "price_usd": str(per_1000), "applies": f"up to {bound:,}/month" if bound else "above",
                         "free": f"first {v.free_units_per_month:,}/month", "effective": v.effective.isoformat(),
                         "source": v.source})
    for g in GEMINI_PRICES.values():
        rows.append({"provider": "gemini", "item": g.model, "unit": "1M input tokens", "price_usd": str(g.input_per_m),
                     "applies": "text and image input", "free": "", "effective": g.effective.isoformat(),
                     "source": g.source})
        rows.append({"provider": "gemini", "item": g.model, "unit": "1M output tokens",
                     "price_usd": str(g.output_per_m), "applies": "output incl. thinking", "free": "",
                     "effective": g.effective.isoformat(), "source": g.source})
    rows.append({"provider": "local", "item": LOCAL_MODEL, "unit": "photo", "price_usd": "0", "applies": "offline",
                 "free": "", "effective": "", "source": "runs on your machine"})
    return rows
