"""A griffe extension for the API reference (mkdocs.yml): a thin module that only re-exports
another's names documents them under its own path, with or without `__all__`.

A moved module keeps its old import path as such a module (`keras_nets.finetune` re-exporting
`keras_nets.finetune.<part>`, say); griffe counts an imported name as public only when `__all__`
lists it, so without this a page for the old path would be empty. A module that defines anything
itself is left to griffe's rule: its imports are its own business, not its interface.
"""

import griffe

PACKAGE = "keras_nets"


def _reexports(module):
    """The names a module without `__all__` only imports from the package, if it defines none."""
    if module.exports:
        return []
    names = [name for name in module.members if not name.startswith("_")]
    if any(not module.members[name].is_alias for name in names):
        return []
    imported = []
    for name in names:
        alias = module.members[name]
        if not alias.target_path.startswith(PACKAGE + "."):
            continue
        try:
            if alias.final_target.is_module:
                continue
        except griffe.AliasResolutionError:
            continue
        imported.append(alias)
    return imported


class ReExports(griffe.Extension):
    def on_package(self, *, pkg, **kwargs):
        if pkg.name != PACKAGE:
            return
        modules = [pkg]
        while modules:
            module = modules.pop()
            modules.extend(m for m in module.modules.values() if not m.is_alias)
            for alias in _reexports(module):
                alias.public = True
