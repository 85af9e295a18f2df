"""The pydantic models, split by domain; this package re-exports every public name.

base (Model and shared closed sets) · catalog · estimates · answers · steps (the jobs) · plan · recommendation.
Units live in field names (`*_bytes`, `*_hours`, `*_usd`); memory is always an int of bytes and only the
renderers convert it for people. Every model forbids unknown keys and is immutable.
"""

from advisor.core.models import answers, base, catalog, estimates, recommendation, steps
from advisor.core.models.answers import *  # noqa: F403
from advisor.core.models.base import *  # noqa: F403
from advisor.core.models.catalog import *  # noqa: F403
from advisor.core.models.estimates import *  # noqa: F403
from advisor.core.models.recommendation import *  # noqa: F403
from advisor.core.models.steps import *  # noqa: F403

__all__ = sorted({*answers.__all__, *base.__all__, *catalog.__all__, *estimates.__all__, *recommendation.__all__,
                  *steps.__all__})
