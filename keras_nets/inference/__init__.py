"""Fast CPU inference and export.

    fast = keras_nets.compile_for_inference(model)      # ONNX Runtime, OpenVINO or TensorFlow
    probabilities = fast.predict(images)                # like model.predict, any batch size
    keras_nets.export(model, "xception.onnx")           # or .tflite, or a SavedModel directory

Both start from a copy of the model with every BatchNormalization folded into the convolution
before it (`fold_batch_norms`), so the runtime sees one convolution with a bias where Keras runs a
convolution and a normalisation. The original model is never changed.

  folding     fold_batch_norms: the folded copy.
  compiled    compile_for_inference and the CompiledModel it returns.
  exporting   export, and the ONNX / TFLite / SavedModel writers the runtimes share.
  quantization  precision="int8": static quantization of the ONNX export (ONNX Runtime's tools),
              the calibration images' checks and reading.
  runtimes    one module per runtime (onnxruntime, openvino, tensorflow), and RUNTIMES, the
              order "auto" prefers them in.

  cache       the compiled-model cache: converted (and quantized) ONNX models kept under
              $KERAS_HOME, so that a second run skips the conversion.

Importing this package imports neither Keras nor a runtime or converter: its names are resolved
on first use (the cache and ONNX Runtime serve `keras-nets predict --fast`'s warm start without
Keras). TensorFlow itself is imported only by the tensorflow runtime and by Keras' own export.
"""

import importlib

# Public name -> the module that defines it, imported on first use by __getattr__.
_EXPORTS = {
    "FORMATS": "exporting",
    "RUNTIMES": "runtimes",
    "CompiledModel": "compiled",
    "available_runtimes": "runtimes",
    "compile_for_inference": "compiled",
    "export": "exporting",
    "fold_batch_norms": "folding",
    "thread_count": "runtimes",
}
__all__ = [
    "FORMATS",
    "RUNTIMES",
    "CompiledModel",
    "available_runtimes",
    "compile_for_inference",
    "export",
    "fold_batch_norms",
    "thread_count",
]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
