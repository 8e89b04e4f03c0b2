"""The core: what every model and task stands on (see CONTRIBUTING.md's layers).

Lowest: `safe_files`, `scores`, `graph` (Keras' private graph of layers), `registry` (stores
and lists configs), `imagenet`. Above the weights: `builder`, `blocks`, what the model modules
build with. Above the model modules: `factory` (collects and builds them) and `features`.
"""
