"""keras_nets.core.graph: what features, Grad-CAM and BatchNormalization folding read of a
Functional model's graph, on a model small enough to know every node. A Keras release that
renames `_keras_history`, `_inbound_nodes` or `_nodes_by_depth`, or changes what they hold, fails
here, naming the function."""

import keras
import pytest
from keras import layers

from keras_nets.core import graph


@pytest.fixture(scope="module")
def small():
    """image -> conv -> bn -> relu -> nested(shared, shared) -> pool: `shared` is called twice
    inside `nested`, which is called once in the model."""
    inner_input = keras.Input((4, 4, 3), name="inner_input")
    shared = layers.Conv2D(3, 1, padding="same", name="shared")
    nested = keras.Model(inner_input, shared(shared(inner_input)), name="nested")

    image = keras.Input((8, 8, 3), name="image")
    conv = layers.Conv2D(3, 3, strides=2, padding="same", name="conv")(image)
    bn = layers.BatchNormalization(name="bn")(conv)
    relu = layers.ReLU(name="relu")(bn)
    pooled = layers.GlobalAveragePooling2D(name="pool")(nested(relu))
    model = keras.Model(image, pooled, name="small")
    return model, {"conv": conv, "bn": bn, "relu": relu, "pooled": pooled}, nested


def test_producer_is_the_layer_that_made_a_tensor(small):
    model, tensors, nested = small
    assert graph.producer(tensors["bn"]) is model.get_layer("bn")
    assert graph.producer(model.outputs[0]) is model.get_layer("pool")


def test_producer_node_links_a_tensor_to_its_inputs(small):
    model, tensors, nested = small
    node = graph.producer_node(tensors["relu"])
    assert node.operation is model.get_layer("relu")
    assert len(node.input_tensors) == 1 and node.input_tensors[0] is tensors["bn"]
    assert node.output_tensors[0] is tensors["relu"]
    # through a nested model: the node of its call in the outer graph
    pool_input = graph.producer_node(tensors["pooled"]).input_tensors[0]
    assert graph.producer(pool_input) is nested


def test_call_nodes_has_one_node_per_call(small):
    model, tensors, nested = small
    assert len(graph.call_nodes(model.get_layer("conv"))) == 1
    assert len(graph.call_nodes(nested.get_layer("shared"))) == 2
    (call,) = graph.call_nodes(nested)  # its one call, in the outer model
    assert any(call is node for node in graph.model_nodes(model))


def test_model_nodes_are_the_models_own_graph(small):
    model, tensors, nested = small
    names = {node.operation.name for node in graph.model_nodes(model)}
    assert names == {"image", "conv", "bn", "relu", "nested", "pool"}  # not "shared": inside


def test_ancestors_are_what_an_output_is_computed_from(small):
    model, tensors, nested = small
    assert graph.ancestors(model.get_layer("bn")) == {"bn", "conv", "image"}
    assert graph.ancestors(model.get_layer("image")) == {"image"}


def test_is_graph_model_tells_functional_from_subclassed(small):
    model, tensors, nested = small

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert graph.is_graph_model(model) and graph.is_graph_model(nested)
    assert not graph.is_graph_model(Subclassed())
