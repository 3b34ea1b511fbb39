"""Convolution plans: the one place that decides which kernel runs a 2-D
convolution, and what it packs from the filters.

:func:`fastconv.conv2d`, :func:`fastconv.conv2d_backward`,
:func:`fastconv.select_algorithm` and the 1-D and 3-D convolutions all go
through :class:`ConvPlan`; a layer that keeps a plan and its
:meth:`ConvPlan.pack` result pays the filter packing (the GEMM's weight
panels, Winograd's transformed filters) once while its weights do not
change, instead of on every call.
"""
from collections import namedtuple

import numpy as np

from . import _ext
from . import _validation as _v
from ._typing import Algorithm, Array, Float, Int, Padding2, Shape, Size2

__all__ = [
    "ConvPlan", "ConvPacked", "conv_plan", "plan_for", "choose_algorithm",
    "winograd_pays", "winograd_tile", "WINOGRAD_MIN_CHANNELS", "WINOGRAD_TILES",
]

# Channels (input and output, per group) from which "auto" picks Winograd.
WINOGRAD_MIN_CHANNELS = 16

# The public algorithm names; "winograd" picks its tile by the rule of
# winograd_tile, the others force one.
WINOGRAD_TILES = {"winograd2x2": 2, "winograd4x4": 4}


def winograd_pays(x_shape, weight_shape, groups):
    """Whether Winograd beats the GEMM for a 3x3 stride-1 layer of these
    shapes (measured: benchmarks/conv3x3.py, README "Which convolution
    kernel runs").  Its transforms cost per channel and filter what its
    products save, and conv2d transforms the filters on every call, so it
    needs enough channels, channels in whole 16-lane vectors, and enough
    output positions N*H*W to spread the filter transform over:
    N*H*W >= 1024 with at least 32 channels and filters per group (4096
    if either is not a multiple of 16); N*H*W >= 16384 with 16 to 31, both
    multiples of 16 (16 exactly); never with fewer than 16."""
    N, _, H, W = x_shape
    F, Cg = weight_shape[:2]
    Fg, positions = F // groups, N * H * W
    low = min(Cg, Fg)
    whole = Cg % 16 == 0 and Fg % 16 == 0
    if low >= 32:
        return positions >= (1024 if whole else 4096)
    return low >= WINOGRAD_MIN_CHANNELS and whole and positions >= 16384


def choose_algorithm(x_shape, weight_shape, groups, stride, dilation):
    """The kernel "auto" runs, from the shapes only (see select_algorithm).

    Layers Winograd computes through their phases (_phase_geometries): a
    dilated 3x3 one where it has at least 64 channels and filters per group
    and its phases at least 14 x 14 cells (splitting x and merging y cost a
    pass over each: with fewer channels, or smaller phases and their tiles'
    overhang, the GEMM won), by the rule of its undilated twin; a strided
    one whose stride phases are 3x3 where its taps fill at least 3/4 of the
    phases' 3x3 kernels (AlexNet's 11x11/4: 121 of 144 taps; not 5x5/2: 25
    of 36, which measured no faster forward), by the rule on the phases'
    channels and positions."""
    N, C, H, W = x_shape
    F, Cg, kh, kw = weight_shape
    sh, sw = stride
    dh, dw = dilation
    if groups > 1 and Cg == 1:
        return "direct"
    if not _v.winograd_fits((kh, kw), stride, dilation):
        return "gemm"
    if (dh, dw) != (1, 1) and (min(Cg, F // groups) < 64 or min(-(-H // dh), -(-W // dw)) < 14):
        return "gemm"
    if 4 * kh * kw < 27 * sh * sw:
        return "gemm"
    phases = sh * sw
    if winograd_pays((N, C * phases, -(-H // sh), -(-W // sw)), (F, Cg * phases, 3, 3),
                     groups):
        return "winograd"
    return "gemm"


# How a strided or dilated layer runs as a 3x3 stride-1 one: x (and, for
# dilation, grad_out) is split by an im2col of these geometries, col2im of
# them brings its gradient (and, for dilation, y) back; w: the filters' split
# (strides only), y: the outputs' (dilation only, whose splits list the
# phases as images: im2col rows in tap-major order).
_Split = namedtuple("_Split", "x w y")


def _phase_geometries(g):
    """A layer Winograd computes through its phases, as a 3x3 stride-1 one:
    (its geometry, the _Split).

    Stride phases (ceil(k / s) == 3): phase (a, b) of the zero-padded input
    holds its rows a, a + sh, ... and columns b, b + sw, ...; channel c
    becomes sh*sw channels (c, a, b) of Ho + 2 by Wo + 2, and the filters'
    (3 sh) x (3 sw) taps (zero past kh x kw) become 3x3 taps on them:
    y[i, j] sums the phase planes' rows i..i+2, columns j..j+2.  Groups stay
    whole: each image's group is split on its own.

    Dilation phases (3x3 filters, dilation d): the outputs (a, b) mod d read
    only the inputs of the same phase, d apart, so each phase of the padded
    input is an image of ceil(Ho / dh) + 2 by ceil(Wo / dw) + 2 on which the
    filters run at dilation 1, and the phases' outputs interleave back into
    y.  Phases past the output (a dilation wider than it) are left out.

    Both splits are an im2col with the window and stride of the phases;
    each cell lands in one place, so their col2im is their inverse (cells
    that no window reaches get 0)."""
    G, Cg = g.groups, g.C // g.groups
    if (g.sh, g.sw) != (1, 1):
        sh, sw, Hp, Wp = g.sh, g.sw, g.Ho + 2, g.Wo + 2
        inner = _v.ConvGeometry(N=g.N, C=g.C * sh * sw, H=Hp, W=Wp, kh=3, kw=3, sh=1, sw=1,
                                pt=0, pl=0, dh=1, dw=1, Ho=g.Ho, Wo=g.Wo, F=g.F, groups=G)
        split_x = _v.ConvGeometry(N=g.N * G, C=Cg, H=g.H, W=g.W, kh=sh, kw=sw, sh=sh, sw=sw,
                                  pt=g.pt, pl=g.pl, dh=1, dw=1, Ho=Hp, Wo=Wp, F=0, groups=1)
        split_w = _v.ConvGeometry(N=g.F, C=Cg, H=g.kh, W=g.kw, kh=sh, kw=sw, sh=sh, sw=sw,
                                  pt=0, pl=0, dh=1, dw=1, Ho=3, Wo=3, F=0, groups=1)
        return inner, _Split(split_x, split_w, None)
    ph, pw = min(g.dh, g.Ho), min(g.dw, g.Wo)
    Hq, Wq = -(-g.Ho // g.dh), -(-g.Wo // g.dw)
    inner = _v.ConvGeometry(N=g.N * ph * pw, C=g.C, H=Hq + 2, W=Wq + 2, kh=3, kw=3, sh=1,
                            sw=1, pt=0, pl=0, dh=1, dw=1, Ho=Hq, Wo=Wq, F=g.F, groups=G)
    split_x = _v.ConvGeometry(N=g.N, C=g.C, H=g.H, W=g.W, kh=ph, kw=pw, sh=g.dh, sw=g.dw,
                              pt=g.pt, pl=g.pl, dh=1, dw=1, Ho=Hq + 2, Wo=Wq + 2, F=0,
                              groups=1)
    split_y = _v.ConvGeometry(N=g.N, C=g.F, H=g.Ho, W=g.Wo, kh=ph, kw=pw, sh=g.dh, sw=g.dw,
                              pt=0, pl=0, dh=1, dw=1, Ho=Hq, Wo=Wq, F=0, groups=1)
    return inner, _Split(split_x, None, split_y)


def _direct_fits(g):
    """Whether the direct kernel's zero-padded row copies (at column stride
    1: Wo + (kw-1)*dw wide, and W + (kw-1)*dw for grad_x) stay within a few
    times the rows of x and y.  A dilation far wider than the input (with the
    padding that lets it fit) makes them grow with the dilation instead:
    the GEMM, whose cost is that of the output, runs those."""
    return g.sw != 1 or (g.kw - 1) * g.dw <= 4 * (g.W + g.Wo) + 64


def winograd_tile(Ho, Wo):
    """The output tile m of Winograd F(m x m, 3x3) for an Ho x Wo output.

    Each tile costs (m+2)^2 multiplications per channel and filter; the
    tiles cover ceil(Ho/m) x ceil(Wo/m) of them.  F(4x4) (36 per 16
    outputs) wins unless the tiles' overhang past the output makes F(2x2)
    (16 per 4) do no more multiplications in all (5x5 outputs: a tie, which
    goes to F(2x2), the cheaper transforms and the smaller rounding error).
    """
    cost = {m: (m + 2) ** 2 * (-(-Ho // m)) * (-(-Wo // m)) for m in (2, 4)}
    return 4 if cost[4] < cost[2] else 2


def _grad_input_geometry(g):
    """The geometry of grad_x = conv2d(grad_out, flipped filters, padding
    2 - p) of a 3x3 unit-stride layer, if Winograd suits it (paddings <= 2,
    enough channels both ways), else None."""
    if g.pt > 2 or g.pl > 2 or min(g.F, g.C) // g.groups < WINOGRAD_MIN_CHANNELS:
        return None
    # the bottom/right padding 2 - p' is what makes the output H x W again
    return _v.ConvGeometry(N=g.N, C=g.F, H=g.Ho, W=g.Wo, kh=3, kw=3, sh=1, sw=1,
                           pt=2 - g.pt, pl=2 - g.pl, dh=1, dw=1, Ho=g.H, Wo=g.W,
                           F=g.C, groups=g.groups)


class ConvPacked:
    """Filters packed by :meth:`ConvPlan.pack` for one algorithm and tile.

    Attributes
    ----------
    packing : tuple
        What was packed: (algorithm, tile, weight shape, groups, dtype name,
        micro-kernel ISA).  Plans whose ``packing`` is equal accept it.
    """

    __slots__ = ("packing", "_forward", "_grad_input", "_grad_valid")

    def __init__(self, packing, forward):
        self.packing = packing
        self._forward = forward
        self._grad_input = None     # the backward's grad_x filters, packed lazily
        self._grad_valid = False    # (into the same array after a repack)

    def __repr__(self):
        algorithm, tile, shape, groups, dtype, isa, _ = self.packing
        what = algorithm if tile is None else f"{algorithm} F({tile}x{tile}, 3x3)"
        return f"<ConvPacked {what} weight{shape} groups={groups} {dtype} {isa}>"


class ConvPlan:
    """The kernel of a 2-D convolution of fixed shapes, and its filter packing.

    Made by :func:`conv_plan`.  ``forward``/``backward`` compute what
    :func:`fastconv.conv2d`/:func:`fastconv.conv2d_backward` compute for
    these shapes (which themselves run a plan), re-checking only the arrays'
    shapes and dtypes.  With ``packed=plan.pack(weight)`` they skip the
    packing of the filters, which ``conv2d`` redoes on every call: valid
    while ``weight`` does not change (the plan cannot tell; repack after
    every update).

    Attributes
    ----------
    algorithm : {"gemm", "direct", "winograd"}
        The kernel that runs.
    tile : int or None
        Winograd's output tile m (2 or 4: F(m x m, 3x3)); None otherwise.
    output_shape : tuple (N, F, Ho, Wo)
    x_shape, weight_shape : tuple
    dtype : numpy.dtype
    packing : tuple
        What :meth:`pack` makes (see :class:`ConvPacked`); it does not depend
        on the batch size, so plans for other batch sizes of the same layer
        accept the same packed filters when their ``packing`` is equal.
    """

    __slots__ = ("geometry", "dtype", "algorithm", "tile", "output_shape", "x_shape",
                 "weight_shape", "packing", "_grad_geometry", "_grad_tile", "_wino", "_split")

    def __init__(self, g, dtype, algorithm="auto", op="conv2d"):
        """From a checked geometry (fastconv._validation); use conv_plan."""
        self.geometry = g
        self.dtype = np.dtype(dtype)
        self.x_shape = (g.N, g.C, g.H, g.W)
        self.weight_shape = (g.F, g.C // g.groups, g.kh, g.kw)
        self.output_shape = (g.N, g.F, g.Ho, g.Wo)
        if algorithm == "auto":
            kernel = choose_algorithm(self.x_shape, self.weight_shape, g.groups, (g.sh, g.sw),
                                      (g.dh, g.dw))
        elif algorithm.startswith("winograd"):
            _v.check_winograd(op, algorithm, (g.kh, g.kw), (g.sh, g.sw), (g.dh, g.dw))
            kernel = "winograd"
        else:
            kernel = algorithm
        if kernel == "direct" and not _direct_fits(g):
            kernel = "gemm"
        self.algorithm = kernel
        self.tile = None
        self._grad_geometry = self._grad_tile = self._wino = self._split = None
        if kernel == "winograd":
            # a strided or dilated layer runs as the 3x3 stride-1 one of its phases
            self._wino = g
            if (g.sh, g.sw, g.dh, g.dw) != (1, 1, 1, 1):
                self._wino, self._split = _phase_geometries(g)
            forced = WINOGRAD_TILES.get(algorithm)
            self.tile = forced or winograd_tile(self._wino.Ho, self._wino.Wo)
            self._grad_geometry = _grad_input_geometry(self._wino)
            if self._grad_geometry is not None:
                self._grad_tile = forced or winograd_tile(self._wino.H, self._wino.W)
        # the stride is there for the phases: it decides what is packed
        self.packing = (kernel, self.tile, self.weight_shape, g.groups, self.dtype.name,
                        _ext.gemm_isa(), (g.sh, g.sw) if self._split and self._split.w else (1, 1))

    def __repr__(self):
        what = self.algorithm if self.tile is None else f"winograd F({self.tile}x{self.tile}, 3x3)"
        return (f"<ConvPlan {what}: x{self.x_shape} weight{self.weight_shape} -> "
                f"{self.output_shape} {self.dtype.name}>")

    # ---- argument checks (cheap: shapes and dtypes only) ----------------

    def _array(self, a, name, shape, op):
        if not (isinstance(a, np.ndarray) and a.dtype == self.dtype and a.shape == shape):
            what = (f"{type(a).__name__}" if not isinstance(a, np.ndarray)
                    else f"shape {a.shape} dtype {a.dtype}")
            raise ValueError(
                f"{op}: {name} must be an ndarray of shape {shape} and dtype "
                f"{self.dtype} for this plan, got {what}")
        if a.flags.c_contiguous and a.flags.aligned:
            return a
        return np.require(a, requirements=["C_CONTIGUOUS", "ALIGNED"])

    def _out(self, out, shape, op, *inputs):
        if out is None:
            return np.empty(shape, dtype=self.dtype)
        if not (isinstance(out, np.ndarray) and out.dtype == self.dtype and out.shape == shape
                and out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            what = (f"{type(out).__name__}" if not isinstance(out, np.ndarray) else
                    f"shape {out.shape} dtype {out.dtype}, C-contiguous "
                    f"{out.flags.c_contiguous}, writeable {out.flags.writeable}, "
                    f"aligned {out.flags.aligned}")
            raise ValueError(
                f"{op}: out must be a writeable C-contiguous, aligned ndarray of shape {shape} "
                f"and dtype {self.dtype}, got {what}")
        if any(np.may_share_memory(out, a) for a in inputs):
            raise ValueError(f"{op}: out must not overlap the inputs")
        return out

    def _scratch_packed(self, w):
        """(buffers, ConvPacked): packed into pooled scratch memory, for a
        one-off call (conv2d): no fresh pages to fault in every call."""
        bufs = []
        p = ConvPacked(self.packing, None)
        if self.algorithm != "direct":
            if self.algorithm == "winograd":
                n = _ext.packed_size("winograd", self.dtype, self._wino, self.tile)
            else:
                n = _ext.packed_size("gemm", self.dtype, self.geometry)
            buf, p._forward = _ext.scratch_array(n, self.dtype)
            bufs.append(buf)
        return bufs, self.pack(w, out=p)

    def _scratch_grad(self, p, w):
        """Give p scratch memory for its grad_x filters (see _scratch_packed)."""
        if self.algorithm == "winograd" and self._grad_geometry is not None:
            n = _ext.packed_size("winograd", self.dtype, self._grad_geometry, self._grad_tile)
        else:
            n = _ext.packed_size("gemm_grad", self.dtype, self.geometry)
        buf, p._grad_input = _ext.scratch_array(n, self.dtype)
        return [buf]

    def _packed(self, packed, weight, op):
        if packed is None:
            return self.pack(weight)
        if not isinstance(packed, ConvPacked):
            raise TypeError(f"{op}: packed must come from ConvPlan.pack, got "
                            f"{type(packed).__name__}")
        if packed.packing != self.packing:
            raise ValueError(
                f"{op}: packed holds filters packed as {packed.packing} but this plan "
                f"packs {self.packing}: pack the weights with this plan")
        return packed

    # ---- the split into phases (see _phase_geometries) -------------------

    def _phase_filters(self, w):
        """The filters as their stride phases' 3x3 ones (else w itself)."""
        sw = self._split.w if self._split else None
        if sw is None:
            return w
        return _ext.im2col(w, sw).reshape(sw.N, sw.C * sw.kh * sw.kw, 3, 3)

    def _scratch(self, shape, bufs):
        """An array of this shape in scratch memory appended to bufs."""
        buf, a = _ext.scratch_array(int(np.prod(shape)), self.dtype)
        bufs.append(buf)
        return a.reshape(shape)

    def _split_into(self, a, geo, shape, bufs):
        """a (as geo's images) split by geo's im2col, in scratch, as shape."""
        cols = self._scratch((geo.N, geo.C * geo.kh * geo.kw, geo.Ho * geo.Wo), bufs)
        _ext.im2col(a.reshape(geo.N, geo.C, geo.H, geo.W), geo, cols,
                    self._split.y is not None)
        return cols.reshape(shape)

    def _merge_into(self, a, geo, out):
        """out (geo's images) = the col2im of a split by geo: by assignment
        where its windows cover each cell once (no zeroing pass, no
        read-modify-write)."""
        cols = a.reshape(geo.N, geo.C * geo.kh * geo.kw, geo.Ho * geo.Wo)
        image = out.reshape(geo.N, geo.C, geo.H, geo.W)
        merge = _ext.phase_merge if _ext.phase_tiles(geo) else _ext.col2im
        merge(cols, geo, image, self._split.y is not None)
        return out

    # ---- the work ----------------------------------------------------------

    def pack(self, weight: Array[Float], out: "ConvPacked | None" = None) -> "ConvPacked":
        """The forward pass's packed filters (GEMM weight panels or Winograd's
        transformed filters; nothing for the direct kernel).

        Parameters
        ----------
        weight : ndarray of shape ``weight_shape``, dtype ``dtype``
        out : ConvPacked, optional
            Filters packed earlier by a plan with this ``packing``, repacked
            in place (their memory reused: after each weight update, no
            fresh pages to fault in); the grad_x filters are repacked on
            their next use.

        Returns
        -------
        ConvPacked
            ``out`` if given.  What the backward pass's grad_x needs (the
            flipped filters) is packed on its first use and kept in it.
        """
        op = "ConvPlan.pack"
        w = self._array(weight, "weight", self.weight_shape, op)
        g = self.geometry
        p = ConvPacked(self.packing, None) if out is None else self._packed(out, w, op)
        if self.algorithm == "gemm":
            p._forward = _ext.gemm_pack(w, g.groups, p._forward)
        elif self.algorithm == "winograd":
            p._forward = _ext.wino_pack(self._phase_filters(w), g.groups, self.tile,
                                        p._forward)
        p._grad_valid = False
        return p

    def _grad_filters(self, p, w):
        """The filters grad_x needs, packed into p (once per pack)."""
        g = self.geometry
        if not p._grad_valid:
            if self.algorithm == "winograd" and self._grad_geometry is not None:
                p._grad_input = _ext.wino_pack(self._phase_filters(w), g.groups,
                                               self._grad_tile, p._grad_input, flip=True)
            else:
                p._grad_input = _ext.gemm_pack_grad_input(w, g, p._grad_input)
            p._grad_valid = True
        return p._grad_input

    def forward(self, x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
                *, relu: bool = False, packed: "ConvPacked | None" = None,
                out: Array[Float] | None = None) -> Array[Float]:
        """y = conv2d(x, weight, bias), and max(y, 0) if relu.

        Parameters
        ----------
        x : ndarray of shape ``x_shape``, dtype ``dtype``
        weight : ndarray of shape ``weight_shape``, dtype ``dtype``
        bias : ndarray of shape (F,), dtype ``dtype``, optional
        relu : bool
            Apply max(y, 0) (NaN stays NaN) as the output is written.
        packed : ConvPacked, optional
            ``self.pack(weight)`` (packed here if None).
        out : ndarray of shape ``output_shape``, optional
            Written and returned: C-contiguous, dtype ``dtype``, not
            overlapping x.

        Returns
        -------
        y : ndarray of shape ``output_shape``
        """
        op = "ConvPlan.forward"
        g = self.geometry
        x = self._array(x, "x", self.x_shape, op)
        w = self._array(weight, "weight", self.weight_shape, op)
        if bias is not None:
            bias = self._array(bias, "bias", (g.F,), op)
        y = self._out(out, self.output_shape, op, x)
        if self.algorithm == "direct":
            _ext.conv2d_direct(x, w, bias, g, bool(relu), y)
            return y
        bufs = []
        if packed is None:
            bufs, p = self._scratch_packed(w)
        else:
            p = self._packed(packed, w, op)
        if self.algorithm == "winograd":
            inner, split, yw = self._wino, self._split, y
            if split:
                x = self._split_into(x, split.x, inner[:4], bufs)
            if split and split.y:
                yw = self._scratch((inner.N, inner.F, inner.Ho, inner.Wo), bufs)
            _ext.conv2d_winograd(x, p._forward, bias, inner, self.tile, bool(relu), yw)
            if yw is not y:
                self._merge_into(yw, split.y, y)
        else:
            _ext.conv2d_gemm(x, p._forward, bias, g, bool(relu), y)
        for buf in bufs:
            _ext.scratch_release(buf)
        return y

    def backward(self, grad_out: Array[Float], x: Array[Float], weight: Array[Float], *,
                 grad_input: bool = True, packed: "ConvPacked | None" = None,
                 out: Array[Float] | None = None
                 ) -> tuple[Array[Float] | None, Array[Float], Array[Float]]:
        """The gradients of forward (without relu) with respect to x, weight
        and bias.

        Parameters
        ----------
        grad_out : ndarray of shape ``output_shape``
        x, weight : as given to forward
        grad_input : bool
            False skips grad_x (returned as None) and all its work.
        packed : ConvPacked, optional
            ``self.pack(weight)``; the filters grad_x needs are packed into
            it on first use.
        out : ndarray of shape ``x_shape``, optional
            grad_x is written there (C-contiguous, dtype ``dtype``, not
            overlapping the inputs).

        Returns
        -------
        grad_x : ndarray of shape ``x_shape``, or None
        grad_weight : ndarray of shape ``weight_shape``
        grad_bias : ndarray of shape (F,)
        """
        op = "ConvPlan.backward"
        g = self.geometry
        gy = self._array(grad_out, "grad_out", self.output_shape, op)
        x = self._array(x, "x", self.x_shape, op)
        w = self._array(weight, "weight", self.weight_shape, op)
        if out is not None and not grad_input:
            raise ValueError(f"{op}: out is given but grad_input is False (no grad_x to write)")
        gx = self._out(out, self.x_shape, op, gy, x, w) if grad_input else None
        if self.algorithm == "direct":
            gx, gw = _ext.conv2d_direct_backward(gy, x, w, g, bool(grad_input), gx)
            return gx, gw, _ext.bias_grad(gy)
        # grad_x packs into packed (or scratch memory: not the forward's filters)
        p, bufs = None, []
        if grad_input and packed is None:
            p = ConvPacked(self.packing, None)
            bufs = self._scratch_grad(p, w)
        elif grad_input:
            p = self._packed(packed, w, op)
        if self.algorithm == "winograd" and (not grad_input or self._grad_geometry is not None):
            inner, split, gxw = self._wino, self._split, gx
            if split and split.y:
                gy = self._split_into(gy, split.y, (inner.N, inner.F, inner.Ho, inner.Wo),
                                      bufs)
            if grad_input:
                if split:
                    gxw = self._scratch(inner[:4], bufs)
                # grad_x of a 3x3 unit-stride layer: a 3x3 unit-stride
                # convolution of grad_out with the flipped filters, Winograd too
                _ext.conv2d_winograd(gy, self._grad_filters(p, w), None,
                                     self._grad_geometry, self._grad_tile, False, gxw)
                if split:
                    self._merge_into(gxw, split.x, gx)
            xw = self._split_into(x, split.x, inner[:4], bufs) if split else x
            gw, gb = _ext.wino_grad_weight(gy, xw, inner, self.tile)
            if split and split.w:
                gw = self._merge_into(gw, split.w, np.empty(self.weight_shape, self.dtype))
            out = gx, gw, gb
        else:
            wt = self._grad_filters(p, w) if grad_input else None
            gx, gw = _ext.conv2d_gemm_backward(gy, x, w, g, bool(grad_input), wt, gx)
            out = gx, gw, _ext.bias_grad(gy)
        for buf in bufs:
            _ext.scratch_release(buf)
        return out


def conv_plan(x_shape: Shape, weight_shape: Shape, dtype: type | np.dtype | str,
              stride: Size2 = 1, padding: Padding2 = 0, dilation: Size2 = 1, groups: Int = 1,
              algorithm: Algorithm = "auto") -> ConvPlan:
    """Plan a 2-D convolution: the kernel that runs it, from the shapes.

    Parameters
    ----------
    x_shape : tuple (N, C, H, W)
    weight_shape : tuple (F, C // groups, kh, kw)
    dtype : float32 or float64
    stride, padding, dilation, groups, algorithm
        As :func:`fastconv.conv2d`.

    Returns
    -------
    ConvPlan
        With ``algorithm``, ``tile``, ``output_shape``, ``pack(weight)``,
        ``forward(x, weight, bias=None, *, relu=False, packed=None,
        out=None)`` and ``backward(grad_out, x, weight, *, grad_input=True,
        packed=None, out=None)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`fastconv.conv2d` for the same shapes.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> plan = fc.conv_plan((8, 64, 32, 32), (64, 64, 3, 3), np.float32, padding=1)
    >>> plan.algorithm, plan.tile, plan.output_shape
    ('winograd', 4, (8, 64, 32, 32))
    >>> w = np.ones((64, 64, 3, 3), np.float32)
    >>> packed = plan.pack(w)                 # once, while w does not change
    >>> y = plan.forward(np.ones((8, 64, 32, 32), np.float32), w, packed=packed)
    >>> float(y[0, 0, 5, 5])
    576.0
    """
    return plan_for("conv_plan", x_shape, weight_shape, dtype, stride, padding, dilation,
                    groups, algorithm)


def plan_for(op, x_shape, weight_shape, dtype, stride=1, padding=0, dilation=1, groups=1,
             algorithm="auto"):
    """conv_plan, its errors naming ``op`` (the layer's "conv2d")."""
    _v.check_algorithm(algorithm, op)
    dtype = _v.check_dtype(dtype, "dtype", op)
    g = _v.conv2d_geometry(op, tuple(x_shape), tuple(weight_shape), stride, padding,
                           dilation, groups)
    return ConvPlan(g, dtype, algorithm, op)
