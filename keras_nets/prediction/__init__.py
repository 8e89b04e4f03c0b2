"""Predicting: top-k classes of image files (`classifier`: `Classifier`), and over folders of any
size into a results file that survives interruptions (`folders`: `predict_folder`, writing
through `results_file`). Every name of the three is reachable here, as `keras_nets.prediction`
and `keras_nets.folder_prediction` gave them before.
"""

from keras_nets.core import moved as _moved
from keras_nets.prediction import classifier as _classifier
from keras_nets.prediction import folders as _folders
from keras_nets.prediction import results_file as _results_file

_moved.forward(__name__, _classifier, _folders, _results_file)
