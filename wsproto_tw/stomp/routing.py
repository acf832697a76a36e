# -*- test-case-name: tests.stomp.test_routing -*-
"""
Application destinations: frames sent to the application prefix (C{/app}
by default) go to Python callables registered by destination pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["Router"]

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Router:
    """
    Destination patterns and their handlers. A pattern is a destination in
    which C{{name}} stands for one path segment (no C{/}): C{/app/chat/{room}}
    matches C{/app/chat/lobby} with C{room="lobby"}. The first pattern
    registered that matches wins.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []

    def add(self, pattern: str, handler: Callable[..., Any]) -> None:
        """
        Send frames whose destination matches C{pattern} to C{handler}.

        @raise ValueError: C{pattern} does not start with C{/}, or names a
            parameter twice.
        """
        if not pattern.startswith("/"):
            raise ValueError("a destination pattern must start with /")
        names = _PARAMETER.findall(pattern)
        if len(names) != len(set(names)):
            raise ValueError(f"pattern {pattern} names a parameter twice")
        regex = ""
        at = 0
        for match in _PARAMETER.finditer(pattern):
            regex += re.escape(pattern[at : match.start()]) + f"(?P<{match.group(1)}>[^/]+)"
            at = match.end()
        regex += re.escape(pattern[at:])
        self._routes.append((pattern, re.compile(regex + r"\Z"), handler))

    def route(self, pattern: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """
        A decorator form of L{add}.
        """

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add(pattern, handler)
            return handler

        return register

    def match(self, destination: str) -> tuple[Callable[..., Any], dict[str, str]] | None:
        """
        @return: the handler for C{destination} and the values of the
            pattern's parameters, or L{None} if no pattern matches.
        """
        for _pattern, regex, handler in self._routes:
            found = regex.match(destination)
            if found is not None:
                return handler, found.groupdict()
        return None
