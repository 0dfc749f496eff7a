"""Routes: the handler for each event picked by what it says, Bottender / aiogram / Bolt style.

```python
router = Router()

@router.text("hi")                          # the whole text, case-insensitive
async def hello(context): ...

@router.text(re.compile(r"order (\\d+)"))  # re.search; the match is context.match
async def order(context): ...

@router.payload("GET_STARTED")              # a button's payload: exact, or a compiled regex
@router.command("start")                    # /start, /start@bot on Telegram; start elsewhere
@router.event("follow")                     # any event type
@router.default                             # what no route took
```

``app = "bot:router"``: the router is the app. The first route that matches, in the order declared,
handles the event. A route's target may be a ``Flows`` (it runs the session's state), and a state of a
``Flows`` may be a Router. ``router.use(middleware)`` wraps every event the router gets.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from botkit.core.keys import shown
from botkit.engine.context import Context
from botkit.engine.middleware import Handler, Middleware, chain
from botkit.flows.router import Flows

log = logging.getLogger("botkit.routes")

Target = Callable[[Any], Awaitable[Any]]
Pattern = str | re.Pattern[str]
Matcher = Callable[[Context], "re.Match[str] | bool | None"]
H = TypeVar("H", bound=Callable[..., Any])

COMMAND_WORD = re.compile(r"[A-Za-z0-9_]{1,32}")


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    """What the route looks at: ``text``, ``payload``, ``command``, ``event`` or ``default``."""
    matches: Matcher
    target: Target


class Router:
    """Routes each event to the first route that matches it; see the module's docstring."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.middleware: list[Middleware] = []
        self._default: Target | None = None

    # -- declaring ---------------------------------------------------------------------------------

    @overload
    def text(self, pattern: Pattern) -> Callable[[H], H]: ...
    @overload
    def text(self, pattern: Pattern, target: H) -> H: ...

    def text(self, pattern: Pattern, target: Any = None) -> Any:
        """A text message: the whole text equal to ``pattern`` (case-insensitive, spaces around ignored),
        or, for a compiled regex, ``pattern.search(text)`` (its match is ``context.match``)."""
        return self._add("text", _text_matcher(pattern), target)

    @overload
    def payload(self, pattern: Pattern) -> Callable[[H], H]: ...
    @overload
    def payload(self, pattern: Pattern, target: H) -> H: ...

    def payload(self, pattern: Pattern, target: Any = None) -> Any:
        """A payload (a button pressed, a quick reply, a postback): equal to ``pattern``, or, for a compiled
        regex, ``pattern.search(payload)`` (its match is ``context.match``)."""
        return self._add("payload", _payload_matcher(pattern), target)

    @overload
    def command(self, name: str) -> Callable[[H], H]: ...
    @overload
    def command(self, name: str, target: H) -> H: ...

    def command(self, name: str, target: Any = None) -> Any:
        """A command: ``/name`` or ``/name@botname`` on Telegram, ``name`` or ``/name`` elsewhere, then
        optional arguments: ``context.match["args"]`` (None without any)."""
        word = name.lstrip("/")
        if not COMMAND_WORD.fullmatch(word):
            raise ValueError(f"a command is 1 to 32 letters, digits or underscores, not {name!r}")
        return self._add("command", _command_matcher(word), target)

    @overload
    def event(self, kind: str) -> Callable[[H], H]: ...
    @overload
    def event(self, kind: str, target: H) -> H: ...

    def event(self, kind: str, target: Any = None) -> Any:
        """Any event of type ``kind`` (``follow``, ``image``, ``location``, ``scheduled``, …)."""
        return self._add("event", lambda context: context.event.type == kind, target)

    def default(self, target: H) -> H:
        """What no route took (a decorator, or ``router.default(flows)``)."""
        _check(target)
        self._default = target
        return target

    def use(self, middleware: Middleware) -> Middleware:
        """Run ``middleware`` around every event this router gets, in the order added (the first outermost)."""
        if not callable(middleware):
            raise TypeError(f"middleware must be `async def middleware(context, call_next)`, not {middleware!r}")
        self.middleware.append(middleware)
        return middleware

    def _add(self, kind: str, matcher: Matcher, target: Any) -> Any:
        def declare(handler: H) -> H:
            _check(handler)
            self.routes.append(Route(kind, matcher, handler))
            return handler

        return declare if target is None else declare(target)

    # -- routing -----------------------------------------------------------------------------------

    @property
    def flows(self) -> Flows | None:
        """The first ``Flows`` among the targets: where ``step_to`` and scheduled steps go."""
        for target in [route.target for route in self.routes] + [self._default]:
            if isinstance(target, Flows):
                return target
            if isinstance(target, Router) and target.flows is not None:
                return target.flows
        return None

    async def __call__(self, context: Context) -> Any:
        if not self.middleware:
            return await self.route(context)
        handler: Handler = self.route
        return await chain(self.middleware, handler)(context)

    async def route(self, context: Context) -> Any:
        """Run the first route that matches (a scheduled step goes straight to its flow's state)."""
        flows = self._step_target(context)
        if flows is not None:
            return await flows.run(_routed(context, flows), context.session.slug or flows.entry)
        for route in self.routes:
            found = route.matches(context)
            if found:
                context.match = found if isinstance(found, re.Match) else None
                return await route.target(context)
        if self._default is not None:
            context.match = None
            return await self._default(context)
        log.info("%s event of %s: no route matched and the router has no default", context.event.type,
                 shown(context.session.id))
        return None

    def _step_target(self, context: Context) -> Flows | None:
        """The Flows declaring the state a scheduled step moved the session to, if any."""
        if context.event.type != "scheduled" or context.session.slug is None:
            return None
        flows = self.flows
        return flows if flows is not None and context.session.slug in flows else None


def _routed(context: Context, flows: Flows) -> Any:
    if hasattr(context, "flows"):
        setattr(context, "flows", flows)  # noqa: B010 (a FlowContext's; the engine's Context has none)
    return context


def _check(target: Any) -> None:
    if not callable(target):
        raise TypeError(f"a route's target is `async def handler(context)`, a Flows or a Router, not {target!r}")


def _text_matcher(pattern: Pattern) -> Matcher:
    if isinstance(pattern, re.Pattern):
        return lambda context: _search(pattern, context.event.text if context.event.is_text else None)
    if not isinstance(pattern, str):
        raise TypeError(f"router.text takes a string or a compiled regex, not {pattern!r}")
    wanted = pattern.strip().casefold()
    return lambda context: context.event.is_text and (context.event.text or "").strip().casefold() == wanted


def _payload_matcher(pattern: Pattern) -> Matcher:
    if isinstance(pattern, re.Pattern):
        return lambda context: _search(pattern, context.event.payload)
    if not isinstance(pattern, str):
        raise TypeError(f"router.payload takes a string or a compiled regex, not {pattern!r}")
    return lambda context: context.event.payload is not None and context.event.payload == pattern


def _command_matcher(word: str) -> Matcher:
    telegram = re.compile(rf"/{word}(?:@\w+)?(?:\s+(?P<args>.*))?", re.IGNORECASE | re.DOTALL)
    elsewhere = re.compile(rf"/?{word}(?:\s+(?P<args>.*))?", re.IGNORECASE | re.DOTALL)

    def matches(context: Context) -> re.Match[str] | None:
        event = context.event
        if not event.is_text or event.text is None:
            return None
        pattern = telegram if event.platform == "telegram" else elsewhere
        return pattern.fullmatch(event.text.strip())

    return matches


def _search(pattern: re.Pattern[str], value: str | None) -> re.Match[str] | None:
    return None if value is None else pattern.search(value)
