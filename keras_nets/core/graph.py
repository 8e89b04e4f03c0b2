"""The one place that reads Keras' private graph of layers.

A Functional model keeps its graph in attributes Keras does not document: each symbolic tensor's
`_keras_history` (operation, node index, tensor index), each layer's `_inbound_nodes` (one node
per call) and each Functional model's `_nodes_by_depth`. Features, Grad-CAM and BatchNormalization
folding all walk that graph; they call these functions, so that a Keras release which renames an
attribute breaks one module, and tests/core/test_graph.py says which function.
"""

import keras


def output_structure(model):
    """`model.output`: a tensor, or a list or dict of them. A Sequential model has one output, and
    Keras gives it as `output` only once the model has been called as a layer."""
    if isinstance(model, keras.Sequential):
        return model.outputs[0]
    return model.output


def is_graph_model(model):
    """Whether `model` (a keras.Model) has a graph of layers: Functional, not subclassed."""
    return hasattr(model, "_nodes_by_depth")


def producer_node(tensor):
    """The graph node that produced the symbolic tensor `tensor` (its `.operation` made it)."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def producer(tensor):
    """The operation (layer, nested model or keras.ops operation) that produced `tensor`."""
    return tensor._keras_history.operation


def call_nodes(operation):
    """The nodes of every call of `operation` (a layer or nested model), in call order."""
    return list(operation._inbound_nodes)


def model_nodes(model):
    """Every node of the Functional `model`'s own graph (not inside nested models), from the
    output back to the inputs, depth by depth."""
    return [node for depth in model._nodes_by_depth.values() for node in depth]


def ancestors(layer):
    """The names of `layer` and of every operation its outputs are computed from."""
    seen, stack = set(), [layer]
    while stack:
        operation = stack.pop()
        if operation.name in seen:
            continue
        seen.add(operation.name)
        for node in call_nodes(operation):
            stack.extend(parent.operation for parent in node.parent_nodes)
    return seen
