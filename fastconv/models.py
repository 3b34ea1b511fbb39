"""Reference architectures built from :mod:`fastconv.layers`.

Examples
--------
>>> from fastconv.models import vgg16
>>> from fastconv import shapes
>>> model = vgg16(rng=0)                       # doctest: +SKIP
>>> shapes.count_params(model)                 # doctest: +SKIP
138357544
"""

import numpy as np

from . import layers as L
from ._typing import DTypeLike

__all__ = ["vgg16", "VGG16_CONFIG"]

# VGG configuration D (Simonyan & Zisserman 2015, table 1): output channels of
# each 3x3 pad-1 convolution, "M" a 2x2 stride-2 max pooling.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(num_classes: int = 1000, *, dtype: DTypeLike = np.float32,
          rng: int | np.random.Generator | None = None) -> L.Sequential:
    """VGG-16 (configuration D), the network of the cs231n notes' table.

    Thirteen 3x3 convolutions (stride 1, padding 1), each followed by ReLU,
    in five blocks ending in 2x2 stride-2 max pooling, then FC 4096 - FC
    4096 - FC num_classes with ReLU and Dropout(0.5) between, as
    torchvision's ``vgg16`` (without its adaptive pooling, the identity at
    224x224).

    Parameters
    ----------
    num_classes : int
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights and of Dropout's masks.

    Returns
    -------
    Sequential
        ``Sequential(features, Flatten(), classifier)``: ``model[0]`` is the
        convolutional part (``receptive_field(model[0])`` is 212 x 212 with
        jump 32), ``model[2]`` the classifier.  Parameter names
        ``"0.<i>.weight"`` / ``"2.<i>.weight"`` are torchvision's
        ``"features.<i>.weight"`` / ``"classifier.<i>.weight"``.
        Input (N, 3, 224, 224), output (N, num_classes).  138,357,544
        parameters for 1000 classes: about 553 MB in float32.

    Raises
    ------
    ValueError, TypeError
        A bad num_classes, dtype or rng.

    Examples
    --------
    >>> model = vgg16(rng=0)                                # doctest: +SKIP
    >>> model.output_shape((2, 3, 224, 224))                # doctest: +SKIP
    (2, 1000)
    """
    rng = L._as_rng(rng)
    L._positive_int(num_classes, "num_classes", "vgg16")
    kw = dict(dtype=dtype, rng=rng)
    features, channels = [], 3
    for item in VGG16_CONFIG:
        if item == "M":
            features.append(L.MaxPool2d(2, 2))
        else:
            features += [L.Conv2d(channels, item, 3, padding=1, **kw), L.ReLU()]
            channels = item
    classifier = L.Sequential(
        L.Linear(512 * 7 * 7, 4096, **kw), L.ReLU(), L.Dropout(0.5, rng=rng),
        L.Linear(4096, 4096, **kw), L.ReLU(), L.Dropout(0.5, rng=rng),
        L.Linear(4096, num_classes, **kw),
    )
    return L.Sequential(L.Sequential(*features), L.Flatten(), classifier)
