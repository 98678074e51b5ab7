"""Framework-free core of the iris-classifier: load ``model.json`` and predict with numpy only.

This module is shipped inside every ``model.tar.gz`` as ``code/iris_model.py``. It is used by
``code/inference.py`` (the SageMaker scikit-learn container's script-mode handlers) and can be
reused unchanged by an on-prem model server:

    import iris_model
    model = iris_model.load_model("/path/to/extracted/tarball")
    result = model.predict([[5.1, 3.5, 1.4, 0.2]])
    # {"model_name": "iris-classifier", "model_version": "1.0.0", "classes": [...],
    #  "predictions": [{"label": "setosa", "probabilities": [...]}]}

No pickle is involved: the model is a multinomial logistic regression whose learned parameters
(and optional standard-scaler statistics) are plain JSON. Keep this file compatible with the
Python (3.8+) and numpy (1.x and 2.x) of the serving container: standard library + numpy only.
"""

import json
import os

import numpy as np

MODEL_FILENAME = "model.json"
MODEL_FORMAT = "lastmile.logistic-regression/v1"


def as_matrix(instances, feature_names=None):
    """Validate a batch of instances and return it as a float64 array of shape (n, n_features).

    ``instances`` is a list of rows (each a list of numbers) or a 2-D numeric numpy array. With
    ``feature_names`` the number of columns is checked too. Raises ValueError with a message that
    is safe to return to the caller.
    """
    n_features = None if feature_names is None else len(feature_names)
    expected = ""
    if n_features is not None:
        expected = " expected {} ({})".format(n_features, ", ".join(feature_names))
    if isinstance(instances, np.ndarray):
        array = instances
        if array.dtype.kind not in "iuf":
            raise ValueError("instances must be numeric, got dtype {}".format(array.dtype))
    else:
        if not isinstance(instances, (list, tuple)):
            raise ValueError(
                "instances must be a list of rows, got {}".format(type(instances).__name__)
            )
        if len(instances) == 0:
            raise ValueError("instances must contain at least one row")
        width = n_features
        for i, row in enumerate(instances):
            if not isinstance(row, (list, tuple)):
                raise ValueError(
                    "instance {} must be a list of numbers (one row per instance), got {}".format(
                        i, type(row).__name__
                    )
                )
            if width is None:
                width = len(row)
            if len(row) != width:
                hint = expected or " expected {} like the first row".format(width)
                raise ValueError("instance {} has {} features,{}".format(i, len(row), hint))
            for value in row:
                # bool is an int subclass, but a JSON true/false is not a measurement.
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(
                        "instance {} contains a non-numeric value {!r}".format(i, value)
                    )
        array = np.asarray(instances, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(
            "instances must be 2-dimensional (rows x features), got {} dimension(s)".format(
                array.ndim
            )
        )
    if array.shape[0] == 0:
        raise ValueError("instances must contain at least one row")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError("instances have {} features,{}".format(array.shape[1], expected))
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError("instances contain NaN or infinite values")
    return array


class IrisModel(object):
    """A multinomial (softmax) logistic regression, optionally preceded by standard scaling."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("model spec must be a JSON object")
        if spec.get("format") != MODEL_FORMAT:
            raise ValueError(
                "unsupported model format {!r}, expected {!r}".format(
                    spec.get("format"), MODEL_FORMAT
                )
            )
        self.name = str(spec["name"])
        self.version = str(spec["version"])
        self.feature_names = [str(f) for f in spec["feature_names"]]
        self.classes = [str(c) for c in spec["classes"]]
        self.n_features = len(self.feature_names)

        self.coef = np.asarray(spec["coef"], dtype=np.float64)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float64)
        # Multinomial model: one row of coefficients per class (sklearn's binary case, with a
        # single row, is deliberately not supported here).
        n_classes = len(self.classes)
        if n_classes < 3:
            raise ValueError("a multinomial model needs at least three classes")
        if self.coef.shape != (n_classes, self.n_features):
            raise ValueError(
                "coef has shape {}, expected {}".format(
                    self.coef.shape, (n_classes, self.n_features)
                )
            )
        if self.intercept.shape != (n_classes,):
            raise ValueError(
                "intercept has shape {}, expected {}".format(self.intercept.shape, (n_classes,))
            )

        scaler = spec.get("scaler")
        if scaler is None:
            self.mean = None
            self.scale = None
        else:
            self.mean = np.asarray(scaler["mean"], dtype=np.float64)
            self.scale = np.asarray(scaler["scale"], dtype=np.float64)
            if self.mean.shape != (self.n_features,) or self.scale.shape != (self.n_features,):
                raise ValueError("scaler mean/scale must have {} entries".format(self.n_features))
            if not np.all(self.scale > 0):
                raise ValueError("scaler scale must be positive")

        params = (
            ("coef", self.coef),
            ("intercept", self.intercept),
            ("scaler mean", self.mean),
            ("scaler scale", self.scale),
        )
        for label, values in params:
            if values is not None and not np.all(np.isfinite(values)):
                raise ValueError("{} contains non-finite values".format(label))

    # -- input validation -------------------------------------------------------------------

    def validate_features(self, instances):
        """Return ``instances`` as a float64 array of shape (n, n_features) or raise ValueError."""
        return as_matrix(instances, self.feature_names)

    # -- inference ----------------------------------------------------------------------------

    def predict_proba(self, instances):
        """Class probabilities, shape (n, n_classes), columns ordered as ``self.classes``."""
        x = self.validate_features(instances)
        if self.mean is not None:
            x = (x - self.mean) / self.scale
        scores = x @ self.coef.T + self.intercept
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, instances):
        """Labels and probabilities as a JSON-ready dict (the response body of the service)."""
        proba = self.predict_proba(instances)
        best = proba.argmax(axis=1)
        return {
            "model_name": self.name,
            "model_version": self.version,
            "classes": list(self.classes),
            "predictions": [
                {"label": self.classes[int(k)], "probabilities": [float(p) for p in row]}
                for k, row in zip(best, proba)
            ],
        }


def load_model(model_dir):
    """Load ``model.json`` from ``model_dir`` (the extracted model.tar.gz)."""
    path = os.path.join(model_dir, MODEL_FILENAME)
    with open(path, "r", encoding="utf-8") as handle:
        return IrisModel(json.load(handle))
