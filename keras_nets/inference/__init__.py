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

Importing this package imports Keras and none of the runtimes or converters; TensorFlow itself is
imported only by the tensorflow runtime and by Keras' own export, when they run.
"""

from keras_nets.inference.compiled import CompiledModel, compile_for_inference, thread_count
from keras_nets.inference.exporting import FORMATS, export
from keras_nets.inference.folding import fold_batch_norms
from keras_nets.inference.runtimes import RUNTIMES, available_runtimes

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
