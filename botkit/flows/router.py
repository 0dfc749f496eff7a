"""Flows and states, Stealth style: declare states, route each event to its session's ``flow->state``.

```python
flows = Flows()

@flows.state("hello")
async def say_hello(context):
    await context.send_text("Hi!")
    await context.step_to("survey")          # the survey flow's first state, run now

@flows.flow("survey")
class Survey:
    async def ask_name(self, context):
        await context.send_text("What's your name?")
        context.update_session_to(state="get_name")   # where the next message goes

    async def get_name(self, context): ...
```

``app = "bot:flows"``: the router is the app. A session with no slug starts at the entry state (the first
declared, unless ``Flows(entry=...)``); a slug naming no state (a deploy renamed it) goes to the catch-all.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from botkit.core.errors import BotkitError
from botkit.core.keys import shown
from botkit.core.session import Session


class Routed(Protocol):
    """What the router needs of a context."""

    session: Session
    flows: Flows | None

log = logging.getLogger("botkit.flows")

SEPARATOR = "->"
BACK_TO = "back_to"
"""The field of the session's ``flow`` part holding ``set_back_to``'s slug, beside the slugs: it lives and
expires with the session, and stays out of the user's state."""

StateHandler = Callable[[Any], Awaitable[Any]]
H = TypeVar("H", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


class UnknownState(BotkitError, LookupError):
    """A step to a flow or state that the flows do not declare (Stealth's InvalidStateTransition)."""


def slug_of(flow: str, state: str) -> str:
    return f"{flow}{SEPARATOR}{state}"


def flow_of(slug: str | None) -> str | None:
    return None if slug is None else slug.split(SEPARATOR, 1)[0]


def move(session: Session, slug: str) -> None:
    """Point the session at ``slug``, keeping where it was as the previous slug."""
    session.previous_slug, session.slug = session.slug, slug


class Flows:
    """The flow map and the router: call it with a context to run the state the session points at."""

    def __init__(self, entry: str | None = None) -> None:
        """``entry``: the ``"flow->state"`` where sessions with no slug start; the first declared by default."""
        self._states: dict[str, StateHandler] = {}
        self._flows: dict[str, list[str]] = {}
        self._entry = entry
        self._catch_all: StateHandler | None = None

    # -- declaring ---------------------------------------------------------------------------------

    def state(self, flow: str, name: str | None = None) -> Callable[[H], H]:
        """Decorate ``async def <state>(context)``; the state is named after the function unless ``name``."""

        def declare(handler: H) -> H:
            self.add(flow, name or handler.__name__, handler)
            return handler

        return declare

    def flow(self, name: str) -> Callable[[C], C]:
        """Decorate a class: each public ``async def <state>(self, context)`` is a state of flow ``name``,
        in the order written. The class is instantiated once, without arguments."""

        def declare(cls: C) -> C:
            methods = [attr for klass in reversed(cls.__mro__[:-1]) for attr, value in vars(klass).items()
                       if not attr.startswith("_") and inspect.iscoroutinefunction(value)]
            if not methods:
                raise ValueError(f"flow {name!r}: {cls.__name__} has no `async def <state>(self, context)` method")
            instance = cls()
            for attr in dict.fromkeys(methods):
                self.add(name, attr, getattr(instance, attr))
            return cls

        return declare

    def catch_all(self, handler: H) -> H:
        """Decorate the handler for sessions whose slug names no state; it usually ``step_back``s."""
        self._catch_all = handler
        return handler

    def add(self, flow: str, state: str, handler: StateHandler) -> None:
        for part, what in ((flow, "flow"), (state, "state")):
            if not isinstance(part, str) or not part or SEPARATOR in part:
                raise ValueError(f"a {what} name is a non-empty string without {SEPARATOR!r}, not {part!r}")
        if not callable(handler):
            raise TypeError(f"state {slug_of(flow, state)}: {handler!r} is not callable")
        slug = slug_of(flow, state)
        if slug in self._states:
            raise ValueError(f"state {slug} is declared twice")
        self._states[slug] = handler
        self._flows.setdefault(flow, []).append(state)

    # -- looking up ----------------------------------------------------------------------------------

    @property
    def slugs(self) -> list[str]:
        return list(self._states)

    @property
    def flow_names(self) -> list[str]:
        return list(self._flows)

    def __contains__(self, slug: object) -> bool:
        return slug in self._states

    @property
    def entry(self) -> str:
        if self._entry is not None:
            if self._entry not in self._states:
                raise UnknownState(f"entry {self._entry!r} names no declared state; declared: {', '.join(self._states)}")
            return self._entry
        if not self._states:
            raise UnknownState("no state is declared; add one with @flows.state(flow) or @flows.flow(name)")
        return next(iter(self._states))

    def resolve(self, flow: str | None, state: str | None, current: str | None) -> str:
        """The slug ``step_to(flow, state)`` means: a flow alone is its first state, a state alone stays in
        the current flow, ``"flow->state"`` is itself. UnknownState if it is not declared."""
        slug = target_slug(flow, state, current, self)
        if slug not in self._states:
            raise UnknownState(f"no state {slug}; declared: {', '.join(self._states) or 'none'}")
        return slug

    def first_state(self, flow: str) -> str | None:
        states = self._flows.get(flow)
        return slug_of(flow, states[0]) if states else None

    # -- routing -------------------------------------------------------------------------------------

    async def __call__(self, context: Routed) -> None:
        context.flows = self
        slug = context.session.slug
        if slug is None:
            slug = self.entry
            move(context.session, slug)
        await self.run(context, slug)

    async def run(self, context: Routed, slug: str) -> None:
        """Run the state ``slug`` names, or the catch-all when it names none."""
        handler = self._states.get(slug)
        if handler is not None:
            await handler(context)
        elif self._catch_all is not None:
            await self._catch_all(context)
        else:
            log.warning("%s: slug %r names no state and there is no catch-all; starting over at %s",
                        shown(context.session.id), slug, self.entry)
            move(context.session, self.entry)
            await self._states[self.entry](context)


def target_slug(flow: str | None, state: str | None, current: str | None, flows: Flows | None = None) -> str:
    """The slug ``flow``/``state`` name, without checking it is declared (``flows`` finds a flow's first state)."""
    if flow is not None and SEPARATOR in flow:
        if state is not None:
            raise TypeError(f"{flow!r} is a whole slug already; pass no state with it")
        return flow
    if flow is None and state is None:
        raise TypeError("name where to go: a flow, a state (in the current flow), both, or a 'flow->state' slug")
    if flow is None:
        flow = flow_of(current)
        if flow is None:
            raise UnknownState(f"state {state!r} alone means the current flow, and the session has none yet; name the flow")
    if state is None:
        if flows is None:
            raise TypeError(f"name the state of flow {flow!r} (the first state is known only through the Flows router)")
        first = flows.first_state(flow)
        if first is None:
            raise UnknownState(f"no flow {flow!r}; declared: {', '.join(flows.flow_names) or 'none'}")
        return first
    return slug_of(flow, state)
