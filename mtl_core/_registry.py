"""A name -> class registry shared by the weighting and combination methods.

Each method file registers its class once with the decorator; settings are the keyword-only arguments of the
class's ``__init__``, so they live on the class and nowhere else.
"""

from __future__ import annotations

import inspect


class Registry(dict):
    """``{name: class}`` with a registering decorator and a validating factory.

    Parameters
    ----------
    kind : str
        What is registered ("weighting", "combiner"), used in error messages.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, cls):
        """Class decorator: add ``cls`` under its ``name`` class attribute (each name once)."""
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{cls.__name__} must define a class attribute `name`")
        if name in self:
            raise ValueError(f"{self.kind} name {name!r} is registered twice")
        self[name] = cls
        return cls

    def lookup(self, name: str) -> type:
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {sorted(self)}")
        return self[name]

    def settings(self, name: str) -> dict:
        """Setting names of a registered class (its keyword-only ``__init__`` arguments) and their defaults."""
        return {
            p.name: p.default
            for p in inspect.signature(self.lookup(name).__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY
        }

    def make(self, name: str, *args, **settings):
        """Build the class registered as ``name``; unknown names and settings raise ValueError listing valid ones."""
        cls = self.lookup(name)
        valid = self.settings(name)
        for key in settings:
            if key not in valid:
                raise ValueError(f"unknown setting {key!r} for {self.kind} {name!r}; valid settings: {sorted(valid)}")
        return cls(*args, **settings)
