"""Old module paths that keep working after their code moved (see CONTRIBUTING.md's layers).

A module that moved leaves a thin module at its old path that imports its new homes and calls
`forward(__name__, *homes)`: every name of the homes, public or private, is then reachable
through the old path, and setting one there (as `monkeypatch.setattr` does) sets it in the home
that defines it, where the code reads it (deleting it there again restores the home's value, as
`monkeypatch` undoes a set). Nothing inside keras_nets imports an old path.
"""

import sys
import types


class _Forwarding(types.ModuleType):
    """A module whose missing attributes, and assignments to them, go to its homes."""

    def __getattr__(self, name):
        for home in self.__dict__.get("_homes", ()):
            if hasattr(home, name):
                return getattr(home, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name, value):
        home = self._home_of(name)
        if home is None:
            super().__setattr__(name, value)
            return
        original, times = self._replaced.get(name, (getattr(home, name), 0))
        self._replaced[name] = (original, times + 1)
        setattr(home, name, value)

    def __delattr__(self, name):
        """Deleting a name set through this module gives its home the value it had before (what
        `monkeypatch` undoing a `setattr` does: the old path's own dict never held it)."""
        if name in self.__dict__ or name not in self._replaced:
            super().__delattr__(name)
            return
        original, times = self._replaced.pop(name)
        if times > 1:
            self._replaced[name] = (original, times - 1)
        setattr(self._home_of(name), name, original)

    def _home_of(self, name):
        if name.startswith("__") or name in self.__dict__:
            return None
        return next((h for h in self.__dict__.get("_homes", ()) if hasattr(h, name)), None)

    def __dir__(self):
        names = set(self.__dict__)
        for home in self._homes:
            names.update(dir(home))
        return sorted(names)


def forward(name, *homes):
    """Makes the module `name` (an old path) forward to the modules `homes`, searched in order."""
    module = sys.modules[name]
    module.__dict__["_homes"] = homes
    module.__dict__["_replaced"] = {}  # name -> (its home's value before a set here, sets)
    module.__class__ = _Forwarding
