"""Every public import path of keras-nets before issue 24's new layout still works: each module
path below imports, and each name listed for it is there. The names are those each module
defined or re-exported at 7e91594 (public ones, not starting with "_"), plus the package's lazy
exports and builders that README.md and the notebooks import from `keras_nets`. A module that
moved keeps its old path as a thin module forwarding to its new home (keras_nets.core.moved).

Importing every module imports Keras once; the test takes a few seconds.
"""

import importlib

import pytest

PUBLIC_NAMES = {
    "keras_nets": (
        "AlexNet", "DenseNet121", "DenseNet169", "DenseNet201", "InceptionResNetV2", "InceptionV3",
        "MobileNet", "MobileNetV2", "MobileNetV3Large", "MobileNetV3Small", "ResNet50",
        "ShuffleNetV2", "VGG16", "VGG19", "Xception", "compile_for_inference", "create_model",
        "decode_predictions", "eval_transform", "evaluate", "export", "feature_info", "get_config",
        "list_models", "register_model",
    ),
    "keras_nets.alexnet": (
        "AlexNet", "decode_predictions", "preprocess_input", "register_model",
    ),
    "keras_nets.blocks": (
        "MAX_WIDTH_MULTIPLIER", "MOBILENET_BN", "check_width_multiplier", "conv_bn",
        "make_divisible", "stride2_padding",
    ),
    "keras_nets.builder": (
        "ARGS_DOC", "Build", "POOLING_CHOICES", "finish_model", "image_input", "is_integer",
        "published_size", "resolve_input_shape", "start", "with_args_doc",
    ),
    "keras_nets.cli": (
        "BACKEND_PACKAGES", "INTERRUPTED", "OneLineErrors", "backend_problem", "build_parser",
        "command_modules", "main",
    ),
    "keras_nets.commands": (
    ),
    "keras_nets.commands.evaluate": (
        "FAILED", "OK", "Progress", "USAGE", "add_batch_and_fast", "add_model_arguments",
        "add_overwrite", "add_parser", "announce_fast", "check_outputs", "confusion_path",
        "crop_fraction", "describe", "fail", "model_arguments_problem", "model_options", "percent",
        "positive_float", "positive_int", "run",
    ),
    "keras_nets.commands.explain": (
        "Classifier", "FAILED", "ImageError", "NaNScoresError", "OK", "USAGE", "add_image_inputs",
        "add_model_arguments", "add_overwrite", "add_parser", "class_labels", "class_of",
        "explain_image", "fail", "find_images_or_report", "model_arguments_problem",
        "model_options", "output_problem", "picture_name", "positive_int", "read_image",
        "refuse_nan", "remove_empty", "run", "show", "unique_name", "write_png",
    ),
    "keras_nets.commands.predict": (
        "Classifier", "FAILED", "OK", "Progress", "ScoresError", "USAGE", "add_batch_and_fast",
        "add_image_inputs", "add_model_arguments", "add_overwrite", "add_parser", "announce_fast",
        "check_int8", "fail", "find_images_or_report", "model_arguments_problem", "model_options",
        "positive_int", "run", "run_into_file", "show",
    ),
    "keras_nets.commands.train": (
        "FLAGS", "MAX_BATCH", "MAX_BATCH_PIXELS", "MAX_CLASSES", "OK", "USAGE", "add_overwrite",
        "add_parser", "base_weights", "bounded_positive_int", "classifier_arguments",
        "distribution_of", "fail", "positive_float", "positive_int", "run", "seed_value",
    ),
    "keras_nets.commands.weights": (
        "add_parser", "chosen_keys", "fail", "run", "run_download", "run_list", "run_path",
        "run_verify",
    ),
    "keras_nets.densenet": (
        "BLOCKS", "BN_EPSILON", "DOC", "DenseNet", "DenseNet121", "DenseNet169", "DenseNet201",
        "GROWTH_RATE", "conv_block", "decode_predictions", "dense_block", "preprocess_input",
        "register_model", "transition_block",
    ),
    "keras_nets.distribution": (
        "BACKENDS", "DATA_PARALLEL", "backend_module", "data_parallel", "device_names",
        "local_devices",
    ),
    "keras_nets.evaluation": (
        "CONFUSION_MAX_CLASSES", "DatasetError", "Evaluation", "OTHER", "accuracies",
        "class_folders", "class_indices", "evaluate", "is_folder", "labelled_files", "walk_images",
        "write_confusion_png",
    ),
    "keras_nets.explain": (
        "GLOBAL_POOLING", "JET", "PASSED_OVER", "default_layer", "grad_cam", "overlay",
        "refuse_nan", "split_at",
    ),
    "keras_nets.features": (
        "LEVELS", "create_features_model", "feature_info", "unfreeze_from",
    ),
    "keras_nets.finetune": (
        "CLASS_NAMES_FILE", "DEFAULT_FINE_TUNE_LEARNING_RATE", "DEFAULT_LEARNING_RATE",
        "FROM_SCRATCH_MOMENTUM", "base_model_of", "build_classifier", "check_freeze",
        "check_learning_rate", "classifier_to_train", "classifier_top", "compile_classifier",
        "load_class_names", "load_classifier", "load_trained", "preprocessing_layers",
        "replace_classifier", "set_base_frozen", "set_trainable_from", "train_from_scratch",
        "unfreeze_from", "unfreeze_top",
    ),
    "keras_nets.folder_prediction": (
        "COMPARED", "HEADER_KEY", "IMAGE_EXTENSIONS", "ImageError", "PREFETCH_BATCHES",
        "ResultsFile", "ResultsFileError", "UnlistedFolder", "batches", "check_output",
        "decoded_batches", "header_of", "image_name", "is_path", "is_url", "iter_sources",
        "model_identity", "predict_folder", "read_or_error", "record_of", "same_file", "short",
        "walk_images",
    ),
    "keras_nets.image_files": (
        "DOWNLOAD_TIMEOUT", "IMAGE_EXTENSIONS", "ImageError", "MAX_DOWNLOAD_BYTES", "SAMPLE_PHOTO",
        "URL_SCHEMES", "UnlistedFolderWarning", "decode_rgb", "download", "find_images",
        "is_folder", "is_url", "load_rgb", "not_a_regular_file", "photo_or_sample", "read_image",
        "to_rgb", "unlisted_message", "walk_images", "warn_unlisted",
    ),
    "keras_nets.imagenet": (
        "CLASS_INDEX_PATH", "PREPROCESSING_MODES", "class_index", "decode_predictions",
        "preprocess_input", "top_classes",
    ),
    "keras_nets.inception_resnet_v2": (
        "InceptionResNetV2", "add_scaled_residual", "block17", "block35", "block8", "conv2d_bn",
        "decode_predictions", "preprocess_input", "register_model",
    ),
    "keras_nets.inception_v3": (
        "InceptionV3", "auxiliary_classifier", "conv2d_bn", "decode_predictions", "inception_a",
        "inception_b", "inception_c", "preprocess_input", "reduction_a", "reduction_b",
        "register_model",
    ),
    "keras_nets.inference": (
        "CompiledModel", "FORMATS", "RUNTIMES", "available_runtimes", "compile_for_inference",
        "export", "fold_batch_norms", "thread_count",
    ),
    "keras_nets.inference.compiled": (
        "CompiledModel", "RUNTIMES", "available_runtimes", "check_graph_model", "choose_runtime",
        "compile_for_inference", "fold_batch_norms", "get_runtime", "onnx_bytes", "thread_count",
    ),
    "keras_nets.inference.exporting": (
        "EXPORT_RECORD", "FORMATS", "IN_PROCESS_VARIABLE", "STALE_SECONDS", "TEMPORARY_PREFIXES",
        "UNSUPPORTED_ON_BACKEND", "check_format_on_backend", "check_graph_model",
        "converts_in_child_process", "export", "fold_batch_norms", "input_signature",
        "missing_onnx_converter", "onnx_bytes", "onnx_converter_installed", "quiet_converters",
        "remove_stale_temporary_directories", "takes_raw_pixels", "with_uint8_input", "write_onnx",
        "write_onnx_in_process", "write_saved_model", "write_tflite",
    ),
    "keras_nets.inference.folding": (
        "FOLDABLE_CONVOLUTIONS", "check_graph_model", "fold_batch_norms", "foldable_pairs",
    ),
    "keras_nets.inference.quantization": (
        "INPUT_RANGES", "INT8_RUNTIMES", "MAX_CALIBRATION_IMAGES", "MIN_CALIBRATION_IMAGES",
        "MIN_SPAN", "PRECISIONS", "RANGE_TOLERANCE", "WHAT_INPUT", "calibration_images",
        "check_input_range", "check_precision", "evenly_spaced", "expected_preprocessing",
        "int8_onnx_writer", "quantize_onnx",
    ),
    "keras_nets.inference.runtimes": (
        "RUNTIMES", "available_runtimes", "get_runtime", "split_per_core",
    ),
    "keras_nets.inference.runtimes.onnxruntime": (
        "EXTRA", "NAME", "compile", "compile_onnx", "is_installed", "onnx_bytes",
        "onnx_converter_installed", "split_per_core",
    ),
    "keras_nets.inference.runtimes.openvino": (
        "EXTRA", "NAME", "compile", "compile_onnx", "is_installed", "onnx_bytes",
        "onnx_converter_installed", "split_per_core",
    ),
    "keras_nets.inference.runtimes.tensorflow": (
        "EXTRA", "NAME", "compile", "is_installed",
    ),
    "keras_nets.mobilenet": (
        "MobileNet", "PUBLISHED_ALPHAS", "PUBLISHED_SIZES", "check_width_multiplier",
        "decode_predictions", "depthwise_block", "preprocess_input", "published_variant",
        "register_model",
    ),
    "keras_nets.mobilenet_v2": (
        "BN", "MobileNetV2", "PUBLISHED_ALPHAS", "PUBLISHED_SIZES", "check_width_multiplier",
        "decode_predictions", "inverted_res_block", "make_divisible", "preprocess_input",
        "published_variant", "register_model", "stride2_padding",
    ),
    "keras_nets.mobilenet_v3": (
        "BN", "DOC", "MobileNetV3", "MobileNetV3Large", "MobileNetV3Small", "activate",
        "check_width_multiplier", "decode_predictions", "inverted_res_block", "large_stack",
        "make_divisible", "preprocess_input", "published_variant", "register_model", "small_stack",
        "squeeze_excite", "stride2_padding",
    ),
    "keras_nets.prediction": (
        "Classifier", "DEFAULT_MODEL", "IMAGENET", "ImageError", "Result", "ScoresError",
        "imagenet_decoder", "read_image", "trained_transform",
    ),
    "keras_nets.preprocessing": (
        "EvalTransform", "ImageError", "MAX_RESIZED_PIXELS", "MAX_SIZE", "MIN_CROP_PCT",
        "RESAMPLING", "TRAINED_INTERPOLATION", "as_pil", "eval_transform", "shorter_side_size",
        "to_rgb", "trained_transform", "with_preprocessing",
    ),
    "keras_nets.pretrained": (
        "ALLOW_HTTP_ENV", "CHANGED", "CHUNK", "CachedFileChanged", "DOWNLOADED_BY_US",
        "DOWNLOAD_TIMEOUT", "DownloadFailed", "HDF5_SIGNATURE", "MANIFEST_ENV", "MAX_NAME_BYTES",
        "MAX_PARAMETERS", "MIRROR_ENV", "PACKAGED_MANIFEST", "STALE_SECONDS",
        "WeightsDownloadError", "cache_dir", "cache_path", "cached_file", "cached_problem",
        "candidate_urls", "change_since_cached", "check_published", "default_variant", "digests",
        "downloaded_here", "entry", "fetch", "file_problem", "hdf5_problem", "is_regular_file",
        "keras3_weights_file", "load_published_weights", "load_weights_file", "manifest", "md5_of",
        "model_of", "record_sha256", "recorded_sha256", "resolve", "sha256_record", "size_bound",
        "unchecked_source_problem", "variants", "weighted_layer_names",
    ),
    "keras_nets.registry": (
        "DEFAULT_CROP_PCT", "DEFAULT_INTERPOLATION", "INTERPOLATIONS", "MODELS", "MODEL_MODULES",
        "ModelConfig", "PREPROCESSING", "create_model", "declared", "get_config", "list_models",
        "model_names", "models", "register_model", "unregister_model",
    ),
    "keras_nets.resnet50": (
        "ResNet50", "bottleneck", "conv_block", "decode_predictions", "identity_block",
        "preprocess_input", "register_model",
    ),
    "keras_nets.safe_files": (
        "LOCK_FILE", "LockedError", "PARTIAL", "Terminated", "atomic_path", "lock_open_file",
        "locked", "partial_path", "remove_stale_partials", "terminate_as_interrupt", "write_json",
    ),
    "keras_nets.scores": (
        "NaNScoresError", "best_first", "predicted", "ranks", "refuse_nan",
    ),
    "keras_nets.shufflenet_v2": (
        "STAGE_CHANNELS", "STAGE_REPEATS", "ShuffleNetV2", "basic_unit", "channel_shuffle",
        "decode_predictions", "depthwise", "downsampling_unit", "pointwise", "preprocess_input",
        "register_model",
    ),
    "keras_nets.training": (
        "BestCheckpoint", "CLASS_NAMES_FILE", "DatasetError", "IMAGE_EXTENSIONS", "MAX_IMAGE_SIZE",
        "MAX_LISTED", "OutputError", "PAUSE_FOR_TESTS", "RUN_FILES", "SPLITS", "atomic_path",
        "augmentation_layers", "best_checkpoint_class", "check_dataset", "check_finite_loss",
        "check_output", "decode_problem", "epoch_lines_class", "labelled_images",
        "labelled_images_class", "not_a_regular_file", "pause_for_tests", "read_for_training",
        "remove_run", "scope_of", "split_files", "summary", "train_classifier", "walk_images",
        "write_json",
    ),
    "keras_nets.vgg": (
        "CONVS_PER_BLOCK", "DOC", "VGG", "VGG16", "VGG19", "conv_block", "decode_predictions",
        "fully_connected_top", "preprocess_input", "register_model",
    ),
    "keras_nets.vgg16": (
        "VGG16", "decode_predictions", "preprocess_input",
    ),
    "keras_nets.vgg19": (
        "VGG19", "decode_predictions", "preprocess_input",
    ),
    "keras_nets.xception": (
        "Xception", "decode_predictions", "entry_block", "middle_block", "preprocess_input",
        "register_model",
    ),
}


@pytest.mark.parametrize("path", sorted(PUBLIC_NAMES))
def test_old_path_imports_with_its_names(path):
    module = importlib.import_module(path)
    assert [name for name in PUBLIC_NAMES[path] if not hasattr(module, name)] == []


@pytest.mark.parametrize("path", sorted(p for p in PUBLIC_NAMES if p != "keras_nets"))
def test_old_path_is_an_attribute_of_its_package(path):
    """`from keras_nets import pretrained`, `keras_nets.inference.exporting`: as before."""
    package, _, name = path.rpartition(".")
    module = importlib.import_module(path)
    assert getattr(importlib.import_module(package), name) is module


def test_from_import_of_every_name():
    """`from path import name` (what README and the notebooks write) for each listed name."""
    missing = []
    for path, names in PUBLIC_NAMES.items():
        for name in names:
            namespace = {}
            try:
                exec(f"from {path} import {name}", namespace)
            except ImportError as error:
                missing.append(f"{path}.{name}: {error}")
    assert missing == []


def test_setting_a_name_on_an_old_path_reaches_its_home(monkeypatch):
    """Code (and tests) that patch `pretrained.CHUNK` patch what the download reads, and undoing
    the patch gives the home its value back."""
    from keras_nets import pretrained
    from keras_nets.weights import download

    chunk = download.CHUNK
    with monkeypatch.context() as patch:
        patch.setattr(pretrained, "CHUNK", 7)
        patch.setattr(pretrained, "CHUNK", 8)
        assert download.CHUNK == 8 and pretrained.CHUNK == 8
    assert download.CHUNK == chunk and pretrained.CHUNK == chunk
