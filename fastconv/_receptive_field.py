"""Receptive-field arithmetic, shared by :func:`fastconv.shapes.receptive_field`,
the layers that hold other layers (``Sequential``, ``Residual``: their
``_rf_geometry``) and ``model.summary``.

A layer's geometry is a tuple with one ``(kernel, stride, pad_before,
dilation)`` per spatial axis, ``None`` for a layer that keeps every pixel
where it is (ReLU) or ``"global"`` for one whose every output sees the whole
input (Linear, global pooling).
"""

__all__ = ["compose", "union", "state_geometry"]

# A field state per spatial axis is (size, jump, left): the field of output 0
# spans input pixels left .. left + size - 1 and output i's starts jump*i
# further.  A layer (kernel, stride, pad_before, dilation) maps it to
# (size + (d*(k-1))*jump, jump*stride, left - pad_before*jump).


def _geom_state(geometry):
    """A per-axis geometry tuple -> field states relative to its own input."""
    return tuple((d * (k - 1) + 1, s, -p) for k, s, p, d in geometry)


def compose(state, geometry):
    """Field state after a layer; state None = no layer yet (identity)."""
    if state == "global" or geometry == "global":
        return "global"
    if geometry is None:
        return state
    if state is None:
        return _geom_state(geometry)
    if len(state) != len(geometry):
        raise ValueError(
            f"receptive_field: a layer with {len(geometry)} spatial axes "
            f"follows one with {len(state)}")
    return tuple(
        (size + d * (k - 1) * jump, jump * s, left - p * jump)
        for (size, jump, left), (k, s, p, d) in zip(state, geometry))


def union(a, b):
    """Field of a sum of two branches with fields a and b (same input)."""
    if a == "global" or b == "global":
        return "global"
    if a is None and b is None:
        return None
    n = len(a if a is not None else b)
    a = a if a is not None else ((1, 1, 0),) * n
    b = b if b is not None else ((1, 1, 0),) * n
    out = []
    for (sa, ja, la), (sb, _jb, lb) in zip(a, b):
        left = min(la, lb)
        right = max(la + sa, lb + sb)
        out.append((right - left, ja, left))      # the first branch's jump
    return tuple(out)


def state_geometry(state):
    """A field state as the equivalent dense geometry (k, s, pad, 1)."""
    if state is None or state == "global":
        return state
    return tuple((size, jump, -left, 1) for size, jump, left in state)
