"""``fastconv demo``: train a small LeNet-style CNN with fastconv's layers.

The network is [CONV-RELU-POOL] x 2 - FC - RELU - FC in float32, trained with
minibatch SGD with momentum (or Adam) on scikit-learn's handwritten digits
(1797 8x8 images bundled with scikit-learn: nothing to download) or on MNIST
read from the standard IDX files. The demo prints the accuracy on held-out
test images, then times training and inference on the same fixed batches with
the compiled kernels, with their pure-NumPy twins (fastconv.reference) and,
when PyTorch is installed, with the same network in torch.nn side by side,
and writes PNG plots of the learning curves, of the first
convolution's filters and of test predictions.

Run it with ``python -m fastconv demo`` (or the ``fastconv demo`` console
script); ``--help`` lists the options.  The pieces are usable on their own:
:func:`build_model`, :func:`train`, :func:`evaluate`, :func:`predict`,
:func:`measure_speed` and the ``plot_*`` functions.
"""
import argparse
import contextlib
import copy
import importlib.util
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import fastconv

from . import _paths, _threads, datasets

__all__ = [
    "build_model", "describe_model", "train", "evaluate", "predict",
    "measure_speed", "plot_curves", "plot_filters", "plot_predictions",
    "add_arguments", "make_parser", "run", "run_checked", "main", "History",
    "DemoResult", "description",
]

DTYPE = np.float32
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
#: Per data set: (epochs, batch size).  On digits with SGD: 97.8-99.2% test
#: accuracy over seeds 0..19, after 2-4 s of training on one core.
DEFAULTS = {"digits": (20, 32), "mnist": (3, 64)}
#: Initial learning rate per optimiser (cosine-decayed to a twentieth).
DEFAULT_LR = {"sgd": 0.02, "adam": 0.002}
TIMED_BATCHES = 20        # training batches timed per backend in the comparison
INFER_IMAGES = 2000       # at most this many images timed for inference
INFER_BATCH = 500
TIMING_ROUNDS = 5         # each speed figure is the median of this many runs
# Pause between timed turns: OpenBLAS's idle threads keep spinning for up to
# ~0.1 s after a call, which would slow the next backend's turn.
_PAUSE = 0.1
_SPEED_LR = 1e-3          # learning rate of the timed training steps
_EXTRA_HINT = 'pip install "fastconv[demo]"'


@dataclass
class History:
    """Per-epoch learning curves.

    Attributes
    ----------
    train_loss, train_acc : list of float
        Mean loss and accuracy over each epoch's training batches (measured
        while the weights change, in training mode).
    test_loss, test_acc : list of float
        Loss and accuracy on the held-out test images after each epoch.
    train_seconds : float
        Time spent in training steps (forward, loss, backward, optimiser
        step), excluding batch assembly, evaluation and the progress display.
    train_images : int
        Number of images those steps processed.
    """

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    train_seconds: float = 0.0
    train_images: int = 0


@dataclass
class DemoResult:
    """What :func:`run` measured and wrote.

    Attributes
    ----------
    test_accuracy : float
        Accuracy on the held-out test images after the last epoch, in [0, 1].
    history : History
    speed : dict
        :func:`measure_speed`'s result for "fastconv", "reference" and,
        when torch is installed (and not ``--no-torch``), "torch" (empty when
        the comparison was skipped).
    files : dict
        ``{"curves" | "filters" | "predictions": path}`` of the PNGs written.
    model : fastconv.layers.Sequential
        The trained network.
    """

    test_accuracy: float
    history: History
    speed: dict
    files: dict
    model: object


# --------------------------------------------------------------------------
# model, training, evaluation


def build_model(input_shape, n_classes=10, *, channels=(16, 32), hidden=64,
                rng=None, dtype=DTYPE):
    """The LeNet-style network [CONV-RELU-POOL] x 2 - FC - RELU - FC.

    Both convolutions are 3x3 with padding 1 (they keep the size) and each
    2x2 max pool halves it, so an H x W input reaches the first fully
    connected layer as ``channels[1] * (H // 4) * (W // 4)`` features.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image; H and W at least 4.
    n_classes : int, default 10
    channels : (int, int), default (16, 32)
        Filters in the two convolutions.
    hidden : int, default 64
        Width of the hidden fully connected layer.
    rng : numpy.random.Generator or int or None
        Source of the initial weights (PyTorch's default initialisation).
    dtype : float32 or float64, default float32

    Returns
    -------
    fastconv.layers.Sequential
        :func:`fastconv.models.lenet`: layers 0 and 3 are the convolutions,
        7 and 9 the fully connected layers.
    """
    from .models import lenet

    return lenet(n_classes, input_shape=tuple(input_shape), channels=channels,
                 hidden=hidden, dtype=dtype, rng=rng)


def describe_model(model):
    """One line naming the layers of a :func:`build_model` network and its size."""
    def conv(layer):
        f, c, kh, kw = layer.params["weight"].shape
        return f"CONV({c}->{f}, {kh}x{kw}, pad 1)-RELU-POOL(2x2)"

    def fc(layer):
        out, inp = layer.params["weight"].shape
        return f"FC({inp}->{out})"

    n_params = sum(p.size for p in model.params.values())
    return (f"{conv(model[0])} - {conv(model[3])} - {fc(model[7])}-RELU - "
            f"{fc(model[9])}; {n_params:,} parameters")


def evaluate(model, x, y, batch_size=INFER_BATCH):
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in eval mode.

    Parameters
    ----------
    model : fastconv.layers.Sequential
    x : ndarray of shape (N, C, H, W)
    y : ndarray of shape (N,), int
    batch_size : int, default 500

    Returns
    -------
    loss, accuracy : float
    """
    from .losses import softmax_cross_entropy

    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        scores = model.forward(xb)
        loss, _ = softmax_cross_entropy(scores, yb)
        total_loss += loss * len(xb)
        correct += int((scores.argmax(axis=1) == yb).sum())
    return total_loss / len(x), correct / len(x)


def predict(model, x, batch_size=INFER_BATCH):
    """Predicted class of each image (eval mode).

    Returns
    -------
    ndarray of shape (N,), int
    """
    model.eval()
    return np.concatenate([model.forward(x[s:s + batch_size]).argmax(axis=1)
                           for s in range(0, len(x), batch_size)])


def _make_optimizer(name, model, lr):
    from .optim import SGD, Adam

    if name == "sgd":
        return SGD(model, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    if name == "adam":
        return Adam(model, lr=lr, weight_decay=WEIGHT_DECAY)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def _lr_at(lr, epoch, epochs):
    """Cosine decay from ``lr`` in the first epoch to ``lr / 20`` in the last."""
    if epochs <= 1:
        return lr
    floor = lr / 20
    return floor + 0.5 * (lr - floor) * (1 + np.cos(np.pi * epoch / (epochs - 1)))


def train(model, split, *, epochs, batch_size, lr, optimizer="sgd", seed=0,
          progress=True, out=None):
    """Train ``model`` on ``split`` with minibatches.

    Each epoch visits the training images once in a seeded random order.  The
    learning rate follows a cosine decay from ``lr`` to ``lr / 20``; SGD uses
    momentum 0.9, both optimisers weight decay 5e-4.  After each epoch the
    test images are evaluated for the learning curves; they play no part in
    training.

    Parameters
    ----------
    model : fastconv.layers.Sequential
    split : fastconv.datasets.DataSplit
    epochs, batch_size : int
    lr : float
        Initial learning rate.
    optimizer : {"sgd", "adam"}, default "sgd"
    seed : int, default 0
        Seed of the batch order.
    progress : bool, default True
        Show a tqdm progress bar per epoch (on stderr) when stderr is a
        terminal; otherwise print one line per epoch to ``out``.
    out : file, optional
        Default: ``sys.stdout``.

    Returns
    -------
    History
    """
    from .losses import softmax_cross_entropy

    out = sys.stdout if out is None else out
    opt = _make_optimizer(optimizer, model, lr)
    rng = np.random.default_rng(seed)
    history = History()
    n = len(split.x_train)
    use_bar = progress and _is_terminal(sys.stderr)
    width = len(str(epochs))
    for epoch in range(epochs):
        opt.lr = _lr_at(lr, epoch, epochs)
        order = rng.permutation(n)
        label = f"epoch {epoch + 1:>{width}}/{epochs}"
        bar = _progress_bar(n, label) if use_bar else None
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, yb = split.x_train[idx], split.y_train[idx]
            t0 = time.perf_counter()
            opt.zero_grad()
            scores = model.forward(xb)
            loss, grad = softmax_cross_entropy(scores, yb)
            model.backward(grad)
            opt.step()
            history.train_seconds += time.perf_counter() - t0
            seen += len(idx)
            loss_sum += loss * len(idx)
            correct += int((scores.argmax(axis=1) == yb).sum())
            if bar is not None:
                bar.set_postfix_str(f"loss {loss_sum / seen:.3f}, acc {correct / seen:.1%}",
                                    refresh=False)
                bar.update(len(idx))
        history.train_images += seen
        history.train_loss.append(loss_sum / seen)
        history.train_acc.append(correct / seen)
        test_loss, test_acc = evaluate(model, split.x_test, split.y_test)
        history.test_loss.append(test_loss)
        history.test_acc.append(test_acc)
        summary = (f"loss {loss_sum / seen:.3f}, train acc {correct / seen:.1%}, "
                   f"test acc {test_acc:.1%}")
        if bar is not None:
            bar.set_postfix_str(summary)
            bar.close()
        else:
            print(f"{label}  {summary}  (lr {opt.lr:.4f})", file=out, flush=True)
    model.eval()
    return history


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_bar(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=True, file=sys.stderr,
                dynamic_ncols=True)


# --------------------------------------------------------------------------
# speed


def measure_speed(model, x, y, *, batch_size, backends=("fastconv", "reference"),
                  twin=None, n_batches=TIMED_BATCHES, n_infer=INFER_IMAGES,
                  infer_batch_size=INFER_BATCH, rounds=TIMING_ROUNDS):
    """Training and inference throughput of copies of ``model`` per backend.

    For each backend a deep copy of the model (the model itself is untouched)
    is switched to that backend, and two jobs are timed:

    * training on ``n_batches`` fixed batches, ``x[:n_batches * batch_size]``
      in order (zero_grad, forward, loss, backward, SGD step);
    * inference: forward in eval mode over ``x[:n_infer]`` in batches of
      ``infer_batch_size``.

    The backend ``"torch"`` runs the same jobs on the model's ``torch.nn``
    twin (:mod:`fastconv.torch_models`, started from the model's weights:
    same SGD settings, ``torch.no_grad()`` for inference) in a PyTorch
    process of its own at fastconv's thread count
    (:class:`fastconv.bench_models.TorchWorker`).

    After one untimed warm-up pass per job, the backends take turns for
    ``rounds`` rounds (fastconv, reference, torch, fastconv, ...), so that
    changes in the machine's load hit them alike, with a 0.1 s pause between
    turns (threads of one turn still spinning must not slow the next); the
    median time of each job counts.

    Parameters
    ----------
    model : fastconv.layers.Sequential
    x, y : ndarray
        Images and labels to time on.
    batch_size : int
    backends : sequence of {"fastconv", "reference", "torch"}
    twin : (str, dict), optional
        With "torch": the :mod:`fastconv.torch_models` function building the
        model's twin and its keyword arguments, e.g. ``("lenet",
        {"input_shape": (1, 8, 8)})``.
    n_batches, n_infer, infer_batch_size, rounds : int

    Returns
    -------
    dict
        ``{backend: {"train": images/s, "infer": images/s}}``, plus the
        workload under the key ``"workload"``: ``{"train_images",
        "infer_images", "infer_batch_size", "rounds"}``, and with "torch"
        ``"torch_version"`` and ``"torch_parity"`` (True when the twin's
        first inference loss matched the model's).
    """
    n_train = min(len(x), n_batches * batch_size)
    x_infer, y_infer = x[:n_infer], y[:n_infer]
    infer_batch_size = min(infer_batch_size, len(x_infer))
    jobs = {backend: _speed_jobs(model, backend, x[:n_train], y[:n_train], batch_size,
                                 x_infer, infer_batch_size)
            for backend in backends if backend != "torch"}
    times = {backend: {"train": [], "infer": []} for backend in backends}
    extra = {}
    with contextlib.ExitStack() as stack:
        if "torch" in backends:
            worker, extra = _torch_jobs(stack, model, twin, (x[:n_train], y[:n_train]),
                                        batch_size, (x_infer, y_infer), infer_batch_size)
            jobs["torch"] = {kind: lambda kind=kind: worker.measure(kind)
                             for kind in ("train", "infer")}
        for _ in range(rounds):
            for backend in backends:
                for kind, job in jobs[backend].items():
                    times[backend][kind].append(job() if backend == "torch" else _timed(job))
                    time.sleep(_PAUSE)
    result = {backend: {"train": n_train / np.median(t["train"]),
                        "infer": len(x_infer) / np.median(t["infer"])}
              for backend, t in times.items()}
    result["workload"] = {"train_images": n_train, "infer_images": len(x_infer),
                          "infer_batch_size": infer_batch_size, "rounds": rounds, **extra}
    return result


def _torch_jobs(stack, model, twin, train_data, batch_size, infer_data, infer_batch_size):
    """Start a PyTorch worker (closed by ``stack``) holding the twin's
    "train" and "infer" jobs, warmed up; return it and the workload facts."""
    import tempfile

    from .bench_models import TorchWorker, loss_value

    name, kwargs = twin
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="fastconv-demo-"))
    state = os.path.join(tmp, "state.npz")
    model.save(state)
    worker = TorchWorker()
    stack.callback(worker.close)
    version, _ = worker.hello()
    worker.set_threads(fastconv.get_num_threads())
    sgd = {"lr": _SPEED_LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY}
    replies = {}
    for kind, (xs, ys), batch in (("train", train_data, batch_size),
                                  ("infer", infer_data, infer_batch_size)):
        data = os.path.join(tmp, f"{kind}.npz")
        np.savez(data, x=xs, y=ys)
        job = {"model": name, "kwargs": kwargs, "state": state, "data": data, "batch": batch,
               "mode": "train" if kind == "train" else "infer", "sgd": sgd}
        replies[kind] = worker.load(job, warmup=1, key=kind)
    xs, ys = infer_data
    net = copy.deepcopy(model).eval()
    loss = loss_value(net.forward(xs[:infer_batch_size]), ys[:infer_batch_size])
    parity = abs(loss - replies["infer"]["loss"]) <= 1e-4 * max(1.0, abs(loss))
    return worker, {"torch_version": version, "torch_parity": parity}


def _speed_jobs(model, backend, x_train, y_train, batch_size, x_infer, infer_batch_size):
    """The two timed jobs of :func:`measure_speed` for one backend, warmed up."""
    from .losses import softmax_cross_entropy

    net = copy.deepcopy(model).set_backend(backend)
    opt = _make_optimizer("sgd", net, lr=_SPEED_LR)
    batches = [(x_train[s:s + batch_size], y_train[s:s + batch_size])
               for s in range(0, len(x_train), batch_size)]

    def train_step(xb, yb):
        opt.zero_grad()
        _, grad = softmax_cross_entropy(net.forward(xb), yb)
        net.backward(grad)
        opt.step()

    def train_all():
        net.train()
        for xb, yb in batches:
            train_step(xb, yb)

    def infer_all():
        net.eval()
        for s in range(0, len(x_infer), infer_batch_size):
            net.forward(x_infer[s:s + infer_batch_size])

    train_step(*batches[0])
    net.eval().forward(x_infer[:infer_batch_size])
    return {"train": train_all, "infer": infer_all}


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# plots


def _figure(figsize, layout="constrained"):
    """A matplotlib Figure rendered by Agg, independent of pyplot's state."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def _image_grid(n, title):
    """A figure with a grid of n small image axes (8 per row), axes hidden.

    The spacing is fixed rather than computed by a layout engine, which
    would take seconds for dozens of axes.
    """
    cols = min(max(n, 1), 8)
    rows = max(1, -(-n // cols))
    height = 1.3 * rows + 0.6
    fig = _figure((1.2 * cols, height), layout=None)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.6 / height,
                        wspace=0.15, hspace=0.35)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return fig, axes


def plot_curves(history, path, title=""):
    """Write a PNG of the loss and accuracy per epoch, train and test.

    Parameters
    ----------
    history : History
    path : str or os.PathLike
    title : str, optional
    """
    fig = _figure((9, 3.6))
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, train_values, test_values, scale in (
            (ax_loss, history.train_loss, history.test_loss, 1),
            (ax_acc, history.train_acc, history.test_acc, 100)):
        ax.plot(epochs, scale * np.asarray(train_values), "o-", label="train (during epoch)")
        ax.plot(epochs, scale * np.asarray(test_values), "s-", label="test (end of epoch)")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.set(ylabel="cross-entropy loss", yscale="log", title="loss")
    ax_acc.set(ylabel="accuracy (%)", title="accuracy")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)


def plot_filters(weight, path, title="first convolution's filters"):
    """Write a PNG showing each filter of a convolution as a small image.

    Parameters
    ----------
    weight : ndarray of shape (F, C, kh, kw)
        Input channel 0 of each filter is shown, on a colour scale
        symmetric around 0 (red positive, blue negative, white 0).
    path : str or os.PathLike
    title : str, optional
    """
    filters = np.asarray(weight)[:, 0]
    fig, axes = _image_grid(len(filters),
                            f"{title}\n(red positive, blue negative weights)")
    for i, (ax, f) in enumerate(zip(axes, filters)):
        lim = float(np.abs(f).max()) or 1.0
        ax.imshow(f, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    fig.savefig(path, dpi=100)


def plot_predictions(images, labels, predicted, path, count=32):
    """Write a PNG of test images titled with their predicted class.

    Misclassified images come first, titled ``predicted (true)`` in red;
    correctly classified ones fill the rest of the grid, titled in black.

    Parameters
    ----------
    images : ndarray of shape (N, 1, H, W)
    labels, predicted : ndarray of shape (N,)
    path : str or os.PathLike
    count : int, default 32
        Number of images shown.
    """
    wrong = np.flatnonzero(predicted != labels)
    shown = np.concatenate([wrong, np.flatnonzero(predicted == labels)])[:count]
    fig, axes = _image_grid(
        len(shown), f"test images and predicted classes: {len(wrong)} of "
                    f"{len(labels)} misclassified, shown first in red as "
                    f"'predicted (true)'")
    for ax, i in zip(axes, shown):
        ax.imshow(images[i, 0], cmap="gray_r", interpolation="nearest")
        ok = predicted[i] == labels[i]
        ax.set_title(f"{predicted[i]}" if ok else f"{predicted[i]} ({labels[i]})",
                     fontsize=9, color="black" if ok else "red")
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------
# command line


def add_arguments(parser):
    """Add the demo's options to an :class:`argparse.ArgumentParser`.

    Returns
    -------
    parser
    """
    (d_epochs, d_batch), (m_epochs, m_batch) = DEFAULTS["digits"], DEFAULTS["mnist"]
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", choices=("digits", "mnist"), default="digits",
        help="digits: scikit-learn's 1797 8x8 handwritten digits (bundled, "
             "offline), 20%% held out for testing (stratified); mnist: the "
             "60000/10000 MNIST images from the IDX files in --data-dir "
             "(default: digits)")
    data.add_argument(
        "--data-dir", metavar="DIR",
        help="with --data mnist: the directory holding train-images-idx3-ubyte, "
             "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
             "t10k-labels-idx1-ubyte (each optionally .gz)")
    training = parser.add_argument_group("training")
    training.add_argument(
        "--epochs", type=_positive_int, metavar="N",
        help=f"passes over the training images (default: {d_epochs} for "
             f"digits, {m_epochs} for mnist)")
    training.add_argument(
        "--batch-size", type=_positive_int, metavar="N",
        help=f"images per step (default: {d_batch} for digits, {m_batch} for mnist)")
    training.add_argument(
        "--optimizer", choices=("sgd", "adam"), default="sgd",
        help=f"SGD with momentum {MOMENTUM}, or Adam; both with weight decay "
             f"{WEIGHT_DECAY:g} (default: sgd)")
    training.add_argument(
        "--lr", type=_positive_float, metavar="LR",
        help=f"initial learning rate, cosine-decayed to LR/20 over the epochs "
             f"(default: {DEFAULT_LR['sgd']:g} for sgd, {DEFAULT_LR['adam']:g} for adam)")
    training.add_argument(
        "--seed", type=int, default=0,
        help="seed of the test split, the initial weights and the batch order "
             "(default: 0)")
    training.add_argument(
        "--backend", choices=("fastconv", "reference"), default="fastconv",
        help="kernels to train with: the compiled ones, or their pure-NumPy "
             "twins in fastconv.reference (default: fastconv)")
    other = parser.add_argument_group("speed and output")
    other.add_argument(
        "--threads", type=_thread_count, metavar="N",
        help="threads for fastconv's kernels and for NumPy's BLAS (default: "
             "fastconv.get_num_threads(): OMP_NUM_THREADS or the core count)")
    other.add_argument(
        "--timed-batches", type=_non_negative_int, default=TIMED_BATCHES, metavar="N",
        help=f"training batches timed on each backend for the speed comparison; "
             f"0 skips it (default: {TIMED_BATCHES})")
    other.add_argument(
        "--no-torch", action="store_true",
        help="leave PyTorch out of the speed comparison (by default, when torch is "
             "installed, the same network in torch.nn is timed in a process of its own)")
    other.add_argument(
        "--out", metavar="DIR", default="fastconv-demo",
        help="directory for the PNG plots, created if needed (default: ./fastconv-demo)")
    other.add_argument(
        "--no-progress", action="store_true",
        help="print one line per epoch instead of progress bars (the default "
             "when stderr is not a terminal)")
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _thread_count(text):
    value = int(text)
    if not 1 <= value <= _threads.MAX_THREADS:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {_threads.MAX_THREADS} (fastconv's thread "
            f"limit), got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def description():
    """The demo's one-paragraph description (for ``--help``)."""
    return " ".join(__doc__.split("\n\n")[1].split())


def make_parser(prog="fastconv demo"):
    """The demo's stand-alone argument parser."""
    return add_arguments(argparse.ArgumentParser(prog=prog, description=description()))


def _missing_extras(data):
    """The optional packages (pip names) the demo needs that are not installed."""
    needed = {"matplotlib": "matplotlib", "tqdm": "tqdm", "threadpoolctl": "threadpoolctl"}
    if data == "digits":
        needed["sklearn"] = "scikit-learn"
    missing = []
    for module, package in needed.items():
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    return missing


def load_data(args):
    """The standardised data named by ``args``, with lines describing it.

    Returns
    -------
    split : fastconv.datasets.DataSplit
    description : list of str
    """
    if args.data == "digits":
        raw = datasets.load_digits_split(seed=args.seed, test_fraction=0.2)
        name = "scikit-learn's handwritten digits"
        how = f"20% held out for testing (stratified, seed {args.seed}); pixels 0..16 -> [0, 1]"
    else:
        raw = datasets.load_mnist(args.data_dir)
        name = f"MNIST from {args.data_dir}"
        how = "the official train/test split; pixels 0..255 -> [0, 1]"
    split, mean, std = datasets.standardize(raw)
    shape = "x".join(map(str, split.x_train.shape[1:]))
    n_classes = len(np.unique(split.y_train))
    return split, [
        f"{name}: {len(split.x_train)} training / {len(split.x_test)} test "
        f"images, {shape}, {n_classes} classes",
        f"{how}, standardised (training mean {mean:.3f}, std {std:.3f})",
    ]


def run(args, out=None, data=None):
    """Run the demo with parsed arguments (see :func:`add_arguments`).

    Parameters
    ----------
    args : argparse.Namespace
    out : file, optional
        Where the report goes (default: ``sys.stdout``; progress bars go to
        stderr).
    data : (DataSplit, list of str), optional
        :func:`load_data`'s result, if already loaded.

    Returns
    -------
    DemoResult
    """
    from threadpoolctl import threadpool_limits

    out = sys.stdout if out is None else out
    epochs = args.epochs or DEFAULTS[args.data][0]
    batch_size = args.batch_size or DEFAULTS[args.data][1]
    lr = args.lr or DEFAULT_LR[args.optimizer]
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    threads = fastconv.get_num_threads()
    n_threads = f"{threads} thread{'s' * (threads != 1)}"

    def say(*lines):
        for line in lines:
            print(line, file=out, flush=True)

    split, data_lines = data if data is not None else load_data(args)
    n_classes = int(max(split.y_train.max(), split.y_test.max())) + 1
    model = build_model(split.x_train.shape[1:], n_classes, rng=args.seed)
    model.set_backend(args.backend)
    optimizer = (f"SGD with momentum {MOMENTUM}" if args.optimizer == "sgd" else "Adam")
    kernels = ("fastconv (compiled)" if args.backend == "fastconv"
               else "reference (pure NumPy, fastconv.reference)")
    say(f"fastconv {fastconv.__version__} demo: a LeNet-style CNN in float32 "
        f"(NumPy {np.__version__}, Python {platform.python_version()})",
        f"data      {data_lines[0]}",
        *(f"          {line}" for line in data_lines[1:]),
        f"model     {describe_model(model)}",
        f"training  {epochs} epochs, batches of {batch_size}, {optimizer}, weight decay "
        f"{WEIGHT_DECAY:g}, lr {lr:g} cosine-decayed to {lr / 20:g}",
        f"kernels   {kernels}; {n_threads} for fastconv and NumPy's BLAS",
        "")
    # One thread count for everything: fastconv's OpenMP threads and (through
    # threadpoolctl) the BLAS behind NumPy's matmul: the FC layers, and the
    # reference convolutions.
    with threadpool_limits(limits=threads, user_api="blas"):
        history = train(model, split, epochs=epochs, batch_size=batch_size, lr=lr,
                        optimizer=args.optimizer, seed=args.seed,
                        progress=not args.no_progress, out=out)
        accuracy = history.test_acc[-1]
        n_test = len(split.y_test)
        say("",
            f"Test accuracy: {accuracy:.2%} ({round(accuracy * n_test)} of {n_test} "
            f"held-out test images)",
            f"Training took {history.train_seconds:.1f} s with {args.backend}: "
            f"{history.train_images:,} images, "
            f"{history.train_images / history.train_seconds:,.0f} images/s "
            f"(training steps only, per-epoch evaluation excluded)")
        speed = {}
        if args.timed_batches > 0:
            backends, twin, torch_note = ("fastconv", "reference"), None, None
            if args.no_torch:
                torch_note = "PyTorch: left out (--no-torch)"
            elif not _torch_available():
                torch_note = ("PyTorch: not installed, so no model-level comparison with it "
                              "(pip install torch adds one)")
            else:
                backends += ("torch",)
                twin = ("lenet", {"num_classes": n_classes,
                                  "input_shape": tuple(int(v) for v in split.x_train.shape[1:])})
            speed = measure_speed(model, split.x_train, split.y_train, batch_size=batch_size,
                                  n_batches=args.timed_batches, backends=backends, twin=twin)
            say("", *_speed_table(speed, batch_size, n_threads, torch_note))
    files = _write_plots(args.out, model, history, split, args)
    say("", f"Plots written to {args.out}:",
        f"  {files['curves']}       loss and accuracy per epoch",
        f"  {files['filters']}      the first convolution's filters",
        f"  {files['predictions']}  test images with their predicted classes")
    return DemoResult(accuracy, history, speed, files, model)


def _torch_available():
    return importlib.util.find_spec("torch") is not None


def _speed_table(speed, batch_size, n_threads, torch_note=None):
    """Lines of the side-by-side speed comparison."""
    fast, ref, work = speed["fastconv"], speed["reference"], speed["workload"]
    theirs = speed.get("torch")
    rows = [("training", "train",
             f"{work['train_images']} images, batches of {batch_size}: "
             f"forward + backward + SGD step"),
            ("inference", "infer",
             f"{work['infer_images']} images, batches of "
             f"{work['infer_batch_size']}: forward only")]
    head = f"  {'':<10}{'fastconv':>10}{'reference':>11}{'speed-up':>10}"
    if theirs:
        head += f"{'torch':>10}{'vs torch':>10}"
    lines = [f"Speed in images/s, float32, {n_threads}: copies of the trained model, "
             f"same batches, median of {work['rounds']} interleaved runs", head]
    for label, key, what in rows:
        line = (f"  {label:<10}{fast[key]:>10,.0f}{ref[key]:>11,.0f}"
                f"{fast[key] / ref[key]:>9.1f}x")
        if theirs:
            line += f"{theirs[key]:>10,.0f}{fast[key] / theirs[key]:>9.2f}x"
        lines.append(f"{line}   {what}")
    lines.append("  fastconv = compiled conv/pool kernels; reference = their NumPy "
                 "twins; the FC layers use NumPy matmul in both")
    if theirs:
        lines.append(f"  torch = the same network in torch.nn (PyTorch {work['torch_version']}, "
                     f"in a process of its own, {n_threads}, same weights and batches); "
                     f"vs torch = fastconv / torch")
        if not work["torch_parity"]:
            lines.append("  WARNING: the PyTorch twin's first loss differs from the model's: "
                         "the two networks are not the same")
    elif torch_note:
        lines.append(f"  {torch_note}")
    return lines


def _write_plots(directory, model, history, split, args):
    """Write the three PNGs; return their paths by name."""
    os.makedirs(directory, exist_ok=True)
    files = {name: os.path.join(directory, f"{name}.png")
             for name in ("curves", "filters", "predictions")}
    plot_curves(history, files["curves"],
                title=f"LeNet-style CNN on {args.data}, float32, {args.backend} kernels, "
                      f"seed {args.seed}")
    weight = model[0].params["weight"]
    plot_filters(weight, files["filters"],
                 title=f"the first convolution's {len(weight)} filters "
                       f"({weight.shape[2]}x{weight.shape[3]}) after training")
    plot_predictions(split.x_test, split.y_test, predict(model, split.x_test),
                     files["predictions"])
    return files


def run_checked(args, parser):
    """Check the arguments, the optional packages and the data, then :func:`run`.

    Problems a user can fix (a missing package, a missing or malformed MNIST
    file) are reported in one line on stderr.

    Returns
    -------
    int
        Exit status: 0 on success, 2 when an optional package is missing
        (the message names the extra to install) or for argument errors
        (through ``parser.error``), 1 when a data file is missing or broken.
    """
    if args.data == "mnist" and not args.data_dir:
        parser.error("--data mnist needs --data-dir DIR, the directory holding "
                     "the MNIST IDX files")
    if args.data == "digits" and args.data_dir:
        parser.error("--data-dir is only used with --data mnist")
    problem = _paths.output_dir_problem(args.out)
    if problem:       # checked before training, not after
        parser.exit(2, f"{parser.prog}: error: --out {args.out} {problem}\n")
    missing = _missing_extras(args.data)
    if missing:
        print(f"{parser.prog}: error: the demo needs {', '.join(missing)}, not "
              f"installed here; install the demo extras with: {_EXTRA_HINT}",
              file=sys.stderr)
        return 2
    try:
        data = load_data(args)
    except (OSError, ValueError) as exc:  # a missing or malformed MNIST file
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    run(args, data=data)
    return 0


def main(argv=None, prog="fastconv demo"):
    """Entry point of ``fastconv demo``; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``demo`` (default: ``sys.argv[1:]``).
    prog : str
        Program name shown in messages.
    """
    parser = make_parser(prog)
    return run_checked(parser.parse_args(argv), parser)
