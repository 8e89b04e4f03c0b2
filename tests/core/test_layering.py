"""The package's layers: every import of a keras_nets module, at module level or inside a function,
goes to a module of its own layer or a lower one, and no keras_nets modules import each other in a
cycle. LAYERS is the order CONTRIBUTING.md describes; a new module must be placed in it.

Read from the source with `ast`, so no model is imported (only the registry's list of model
modules) and the test takes a second.
"""

import ast
import pathlib

import pytest

from keras_nets.core import registry

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "keras_nets"

# The model modules: those the registry collects (CONTRIBUTING.md's "Add a model" puts a new one
# there), and vgg16 and vgg19, keras.applications' module paths of vgg's builders, which register
# nothing of their own. The registry module imports neither Keras nor any model.
MODEL_MODULES = (*registry.MODEL_MODULES, "vgg16", "vgg19")
# Module paths that moved: thin modules forwarding to their new homes (keras_nets.core.moved),
# kept for the code written against them. Nothing inside keras_nets may import them.
OLD_PATHS = (
    "pretrained",
    "registry",
    "safe_files",
    "scores",
    "imagenet",
    "builder",
    "blocks",
    "features",
    "image_files",
    "preprocessing",
    "folder_prediction",
)

# Lowest first. A name stands for that module and, unless a longer name claims them, its
# submodules ("core" is core/__init__.py, core/moved.py and the like).
LAYERS = (
    (
        "core",
        [
            "core",
            "core.safe_files",
            "core.scores",
            "core.graph",
            "core.registry",
            "core.imagenet",
            "core.moved",
        ],
    ),
    ("weights and image files", ["weights", "images", "images.files", "images.layers"]),
    ("builder", ["core.builder", "core.blocks", "core.layers"]),
    ("models", list(MODEL_MODULES)),
    ("factory", ["core.factory", "core.features"]),
    ("package", [""]),  # keras_nets/__init__.py: create_model, list_models, the lazy exports
    ("services", ["images.transforms", "inference", "distribution", "_distribution", "_gradients"]),
    ("tasks", ["finetune", "training", "prediction", "evaluation", "explain"]),
    ("engines", ["batch"]),  # batch inference on Spark, Dask, Ray: through prediction's Classifier
    ("commands", ["commands", "cli", "__main__"]),
    ("old paths", list(OLD_PATHS)),
)


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name):
    """The keras_nets modules `name` imports anywhere in its source: {module: first line}."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            # `from a import b` imports the module a.b when there is one, else names of a.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "keras_nets" and target != name:
                found.setdefault(target, node.lineno)
    return found


def layer_of(name):
    """The index in LAYERS of the module `name` (a keras_nets module), by its longest claim."""
    relative = name.partition(".")[2]
    best = None
    for index, (_, names) in enumerate(LAYERS):
        for claim in names:
            matches = relative == claim or (claim and relative.startswith(claim + "."))
            if matches and (best is None or len(claim) > len(best[1])):
                best = (index, claim)
    return None if best is None else best[0]


GRAPH = {name: imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    assert [name for name in MODULES if layer_of(name) is None] == []


def test_every_old_path_is_a_module():
    assert [old for old in OLD_PATHS if f"keras_nets.{old}" not in MODULES] == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name):
    """Every import goes to the same layer or a lower one (an old path only from outside)."""
    layer = layer_of(name)
    upward = [
        f"{name}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above "
        f"{LAYERS[layer][0]})"
        for target, line in GRAPH[name].items()
        if target in MODULES and layer_of(target) > layer
    ]
    assert upward == []


def test_no_import_cycles():
    cycles, state, stack = [], {}, []

    def visit(name):  # depth-first; a module met again while on the stack closes a cycle
        state[name] = "open"
        stack.append(name)
        for target in GRAPH[name]:
            if target not in MODULES:
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in MODULES:
        if name not in state:
            visit(name)
    assert cycles == []


def test_the_test_sees_function_level_imports():
    """The cycles of issue 24 hid in function bodies: a function-level import must count."""
    assert "keras_nets.images.layers" in GRAPH["keras_nets.core.factory"]  # in with_preprocessing


def test_no_module_over_400_lines():
    """A module that grows past 400 lines holds more than one concern: split it by concern."""
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in MODULES.items()}
    assert {name: size for name, size in sizes.items() if size > 400} == {}
