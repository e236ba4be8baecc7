"""Number fields of configuration models: a yes/no value is not a number.

Python counts True as 1, so pydantic's lax mode would take `max_retries=True` as one attempt and a ticked box
as a threshold of 1.0. Annotating a field with NOT_BOOL refuses bools with their own error (type NOT_A_NUMBER)
and leaves everything else to the field's type: ints, floats, Decimals and numeric strings still convert.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

NOT_A_NUMBER = "yes_no_not_a_number"


def refuse_bool(value: Any) -> Any:
    """`value` unchanged, or a validation error when it is True or False."""
    if isinstance(value, bool):
        # Formatted here: pydantic's own {value} placeholder would render True as 1.
        raise PydanticCustomError(NOT_A_NUMBER, f"{value} is a yes/no value, not a number")
    return value


NOT_BOOL = BeforeValidator(refuse_bool)
Int = Annotated[int, NOT_BOOL]
Float = Annotated[float, NOT_BOOL]
