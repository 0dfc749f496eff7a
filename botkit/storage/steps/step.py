"""A scheduled step: move a session to a slug and run that state when it is due."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Step:
    """What ``step_to_in``/``step_to_at`` leave behind; JSON-serialisable, so it outlives the process.

    ``session_created_at`` names the session the step belongs to: a session that expired (or was deleted)
    and started afresh has another ``created_at``, and the step is dropped. ``from_slug`` is where the
    session stood when the step was scheduled; ``unless_moved`` drops the step if it stands elsewhere.
    """

    id: str
    key: str
    slug: str
    due: float
    scheduled_at: float
    session_created_at: float
    from_slug: str | None = None
    unless_moved: bool = False

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, data: bytes | str | dict[str, Any]) -> Step:
        fields = data if isinstance(data, dict) else orjson.loads(data)
        return cls(**{name: fields[name] for name in cls.__dataclass_fields__ if name in fields})
