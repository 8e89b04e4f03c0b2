"""Moved to keras_nets.prediction.folders (`predict_folder`) and keras_nets.prediction.results_file
(the results file); this old path keeps working."""

from keras_nets.core import moved as _moved
from keras_nets.prediction import folders as _folders
from keras_nets.prediction import results_file as _results_file

_moved.forward(__name__, _folders, _results_file)
