"""Reference architectures built from :mod:`fastconv.layers`.

``vgg16`` is the network of the cs231n notes' memory table.  The five small
networks below are the model benchmark's (``fastconv bench --models``):
``resnet20`` (CIFAR ResNet-20), ``vgg_small`` (eight 3x3 convolutions on
64x64 images), ``lenet`` (the demo's network), ``mobilenet_small``
(MobileNet v1 blocks on 32x32 images) and ``alexnet_small`` (AlexNet's
11x11 stride-4 stem and 5x5 layer on 127x127 images).  Their parameter names are those of
the ``torch.nn`` twins in :mod:`fastconv.torch_models`, so weights move
between the two by name.

Examples
--------
>>> from fastconv.models import vgg16
>>> from fastconv import shapes
>>> model = vgg16(rng=0)                       # doctest: +SKIP
>>> shapes.count_params(model)                 # doctest: +SKIP
138357544
"""

import numpy as np

from . import _validation as _v
from . import layers as L
from ._typing import DTypeLike

__all__ = ["vgg16", "VGG16_CONFIG", "resnet20", "vgg_small", "VGG_SMALL_CONFIG",
           "lenet", "mobilenet_small", "MOBILENET_SMALL_CONFIG", "alexnet_small"]

# VGG configuration D (Simonyan & Zisserman 2015, table 1): output channels of
# each 3x3 pad-1 convolution, "M" a 2x2 stride-2 max pooling.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")


def _vgg_features(config, kw):
    """VGG's feature layers from a config (channels, or "M" for 2x2 max
    pooling): ([Conv2d 3x3 + ReLU | MaxPool2d, ...], output channels)."""
    features, channels = [], 3
    for item in config:
        if item == "M":
            features.append(L.MaxPool2d(2, 2))
        else:
            features += [L.Conv2d(channels, item, 3, padding=1, **kw), L.ReLU()]
            channels = item
    return features, channels


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
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "vgg16")
    kw = dict(dtype=dtype, rng=rng)
    features, channels = _vgg_features(VGG16_CONFIG, kw)
    classifier = L.Sequential(
        L.Linear(512 * 7 * 7, 4096, **kw), L.ReLU(), L.Dropout(0.5, rng=rng),
        L.Linear(4096, 4096, **kw), L.ReLU(), L.Dropout(0.5, rng=rng),
        L.Linear(4096, num_classes, **kw),
    )
    return L.Sequential(L.Sequential(*features), L.Flatten(), classifier)


def resnet20(num_classes=10, *, dtype=np.float32, rng=None):
    """ResNet-20 for 32x32 images (He et al. 2016, section 4.2).

    3x3 convolution 3 -> 16 (no bias) - BatchNorm - ReLU, then three stages
    of three :func:`~fastconv.layers.basic_block` at 16, 32 and 64 channels
    (stride 2 at the start of stages 2 and 3, where the shortcut is a 1x1
    convolution + BatchNorm projection, as ``basic_block`` builds it; the
    paper's CIFAR net pads the identity with zeros instead), global average
    pooling and Linear(64 -> num_classes): 19 convolutions on the main path
    plus the classifier.

    Parameters
    ----------
    num_classes : int
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights (PyTorch's default initialisation).

    Returns
    -------
    Sequential
        ``Sequential(conv, bn, relu, stage1, stage2, stage3,
        GlobalAvgPool2d(), Flatten(), Linear)``; each stage a
        ``Sequential`` of three blocks, so names run ``"0.weight"``,
        ``"1.running_mean"``, ``"4.0.0.body.0.weight"``,
        ``"4.0.0.shortcut.0.weight"``, ``"8.weight"``.  Input (N, 3, 32,
        32) (any H, W >= 5 work), output (N, num_classes).  272,474
        parameters for 10 classes.

    Raises
    ------
    ValueError, TypeError
        A bad num_classes, dtype or rng.
    """
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "resnet20")
    kw = dict(dtype=dtype, rng=rng)
    stages, channels = [], 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        blocks = [L.basic_block(channels, width, stride, **kw),
                  L.basic_block(width, width, **kw),
                  L.basic_block(width, width, **kw)]
        stages.append(L.Sequential(*blocks))
        channels = width
    return L.Sequential(
        L.Conv2d(3, 16, 3, padding=1, bias=False, **kw), L.BatchNorm2d(16, dtype=dtype),
        L.ReLU(), *stages, L.GlobalAvgPool2d(), L.Flatten(),
        L.Linear(64, num_classes, **kw))


# Output channels of the 3x3 pad-1 convolutions of vgg_small, "M" a 2x2
# stride-2 max pooling: 64x64 inputs reach the classifier as 256 x 4 x 4.
VGG_SMALL_CONFIG = (32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M")


def _classifier(features, hidden, num_classes, kw):
    """Linear(features -> hidden) - ReLU - Linear(hidden -> num_classes)."""
    return L.Sequential(L.Linear(features, hidden, **kw), L.ReLU(),
                        L.Linear(hidden, num_classes, **kw))


def vgg_small(num_classes=10, *, hidden=256, dtype=np.float32, rng=None):
    """A VGG-style network for 3x64x64 images: eight 3x3 convolutions.

    Four blocks of two 3x3 convolutions (stride 1, padding 1, with bias),
    each followed by ReLU, at 32, 64, 128 and 256 channels, each block
    ending in 2x2 stride-2 max pooling (:data:`VGG_SMALL_CONFIG`); then
    Flatten - Linear(4096 -> hidden) - ReLU - Linear(hidden -> num_classes).
    No BatchNorm and no Dropout (training is deterministic).

    Parameters
    ----------
    num_classes : int
    hidden : int, keyword-only
        Width of the hidden fully connected layer.
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Returns
    -------
    Sequential
        ``Sequential(features, Flatten(), classifier)``, named as
        :func:`vgg16`: ``"0.<i>.weight"`` for the convolutions,
        ``"2.0.weight"`` and ``"2.2.weight"`` for the classifier.  Input
        (N, 3, 64, 64), output (N, num_classes).  About 420 MFLOP per image
        forward; 2,223,658 parameters for 10 classes.

    Raises
    ------
    ValueError, TypeError
        A bad num_classes, hidden, dtype or rng.
    """
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "vgg_small")
    _v.positive_int(hidden, "hidden", "vgg_small")
    kw = dict(dtype=dtype, rng=rng)
    features, channels = _vgg_features(VGG_SMALL_CONFIG, kw)
    return L.Sequential(L.Sequential(*features), L.Flatten(),
                        _classifier(channels * 4 * 4, hidden, num_classes, kw))


def lenet(num_classes=10, *, input_shape=(1, 28, 28), channels=(16, 32), hidden=64,
          dtype=np.float32, rng=None):
    """The LeNet-style network [CONV-RELU-POOL] x 2 - FC - RELU - FC.

    Both convolutions are 3x3 with padding 1 (they keep the size) and each
    2x2 max pool halves it, so an H x W input reaches the first fully
    connected layer as ``channels[1] * (H // 4) * (W // 4)`` features.  This
    is the demo's network (:func:`fastconv.demo.build_model`).

    Parameters
    ----------
    num_classes : int
    input_shape : (int, int, int), keyword-only
        ``(C, H, W)`` of one image; H and W at least 4.
    channels : (int, int), keyword-only
        Filters in the two convolutions.
    hidden : int, keyword-only
        Width of the hidden fully connected layer.
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Returns
    -------
    Sequential
        Layers 0 and 3 are the convolutions, 7 and 9 the fully connected
        layers.  Input (N, C, H, W), output (N, num_classes); for the
        default 1x28x28 input, 1 -> 16 -> 32 channels and FC 1568 -> 64 ->
        10: 105,866 parameters.

    Raises
    ------
    ValueError, TypeError
        A bad size, dtype or rng.
    """
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "lenet")
    _v.positive_int(hidden, "hidden", "lenet")
    c, h, w = (_v.positive_int(v, "input_shape", "lenet") for v in input_shape)
    if h < 4 or w < 4:
        raise ValueError(f"lenet: input_shape {tuple(input_shape)} needs H and W >= 4")
    c1, c2 = (_v.positive_int(v, "channels", "lenet") for v in channels)
    kw = dict(dtype=dtype, rng=rng)
    return L.Sequential(
        L.Conv2d(c, c1, 3, padding=1, **kw), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(c1, c2, 3, padding=1, **kw), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(),
        L.Linear(c2 * (h // 4) * (w // 4), hidden, **kw), L.ReLU(),
        L.Linear(hidden, num_classes, **kw),
    )


# (output channels, stride) of each depthwise-separable block of
# mobilenet_small: MobileNet v1's first seven blocks at half width, on 32x32
# inputs with a stride-1 stem (CIFAR style), ending at 512 x 4 x 4.
MOBILENET_SMALL_CONFIG = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                          (512, 1))


def mobilenet_small(num_classes=10, *, dtype=np.float32, rng=None):
    """A MobileNet-style network (MobileNet v1 blocks) for 3x32x32 images.

    A 3x3 convolution 3 -> 32 (stride 1, no bias) - BatchNorm - ReLU, then
    seven depthwise-separable blocks (:data:`MOBILENET_SMALL_CONFIG`), each
    ``depthwise 3x3 conv (groups = C, padding 1, stride s) - BatchNorm -
    ReLU - pointwise 1x1 conv - BatchNorm - ReLU`` (convolutions without
    bias, Howard et al. 2017), three of them strided; then global average
    pooling and Linear(512 -> num_classes).

    Parameters
    ----------
    num_classes : int
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Returns
    -------
    Sequential
        ``Sequential(conv, bn, relu, block1, ..., block7,
        GlobalAvgPool2d(), Flatten(), Linear)``; block ``i`` (children
        ``3..9``) is a ``Sequential`` of six layers, so names run
        ``"3.0.weight"`` (depthwise), ``"3.3.weight"`` (pointwise),
        ``"12.weight"`` (classifier).  Input (N, 3, 32, 32), output (N,
        num_classes).  About 45 MFLOP per image forward; 543,050 parameters
        for 10 classes.

    Raises
    ------
    ValueError, TypeError
        A bad num_classes, dtype or rng.
    """
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "mobilenet_small")
    kw = dict(dtype=dtype, rng=rng)
    layers, c = [L.Conv2d(3, 32, 3, padding=1, bias=False, **kw),
                 L.BatchNorm2d(32, dtype=dtype), L.ReLU()], 32
    for f, stride in MOBILENET_SMALL_CONFIG:
        layers.append(L.Sequential(
            L.Conv2d(c, c, 3, stride, 1, groups=c, bias=False, **kw),
            L.BatchNorm2d(c, dtype=dtype), L.ReLU(),
            L.Conv2d(c, f, 1, bias=False, **kw), L.BatchNorm2d(f, dtype=dtype), L.ReLU()))
        c = f
    layers += [L.GlobalAvgPool2d(), L.Flatten(), L.Linear(c, num_classes, **kw)]
    return L.Sequential(*layers)


def alexnet_small(num_classes=10, *, hidden=256, dtype=np.float32, rng=None):
    """An AlexNet-style network for 3x127x127 images.

    AlexNet's layer kinds at a smaller width (Krizhevsky et al. 2012):
    Conv2d(3 -> 64, 11x11, stride 4, padding 2) - ReLU - MaxPool2d(3, 2),
    Conv2d(64 -> 128, 5x5, padding 2) - ReLU - MaxPool2d(3, 2),
    Conv2d(128 -> 192, 3x3, padding 1) - ReLU - Conv2d(192 -> 128, 3x3,
    padding 1) - ReLU - MaxPool2d(3, 2), then Flatten - Linear(1152 ->
    hidden) - ReLU - Linear(hidden -> num_classes).  No Dropout (training
    is deterministic).  The 11x11 stride-4 stem runs Winograd on its stride
    phases (README, "Which convolution kernel runs").

    Parameters
    ----------
    num_classes : int
    hidden : int, keyword-only
        Width of the hidden fully connected layer.
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Returns
    -------
    Sequential
        ``Sequential(features, Flatten(), classifier)``: convolutions
        ``"0.0.weight"``, ``"0.3.weight"``, ``"0.6.weight"``,
        ``"0.8.weight"``, fully connected ``"2.0.weight"`` and
        ``"2.2.weight"``.  Input (N, 3, 127, 127) (31x31, 15x15, 7x7 and
        3x3 maps), output (N, num_classes).  About 180 MFLOP per image
        forward; 968,650 parameters for 10 classes.

    Raises
    ------
    ValueError, TypeError
        A bad num_classes, hidden, dtype or rng.
    """
    rng = _v.as_rng(rng)
    _v.positive_int(num_classes, "num_classes", "alexnet_small")
    _v.positive_int(hidden, "hidden", "alexnet_small")
    kw = dict(dtype=dtype, rng=rng)
    features = L.Sequential(
        L.Conv2d(3, 64, 11, stride=4, padding=2, **kw), L.ReLU(), L.MaxPool2d(3, 2),
        L.Conv2d(64, 128, 5, padding=2, **kw), L.ReLU(), L.MaxPool2d(3, 2),
        L.Conv2d(128, 192, 3, padding=1, **kw), L.ReLU(),
        L.Conv2d(192, 128, 3, padding=1, **kw), L.ReLU(), L.MaxPool2d(3, 2))
    return L.Sequential(features, L.Flatten(), _classifier(128 * 3 * 3, hidden, num_classes, kw))
