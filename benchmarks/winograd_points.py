"""Why F(4x4, 3x3) uses the points 0, 1, -1, 1/2, -2 (and infinity): the
float32 error of Winograd F(m x m, 3x3) for candidate point sets, each
algorithm derived from its points (Toom-Cook) and run in NumPy with
float32 transforms and products (the filter transform in float64, as the
kernels do), against the float64 direct sum, on N(0, 1) inputs and
Kaiming-scaled weights.

    python benchmarks/winograd_points.py

Prints max|y - y64| / max|y64| per point set and channel count.  An error
study, not a timing: nothing here overlaps ``fastconv bench``, and the shapes
are its own (channel counts 16, 64 and 256).
"""
import math
from fractions import Fraction as Fr

import numpy as np

CANDIDATES = {
    "F(2x2): 0, +-1": ((0, 1, -1), 2),
    "F(4x4): 0, +-1, +-2": ((0, 1, -1, 2, -2), 4),
    "F(4x4): 0, +-1, +-1/2": ((0, 1, -1, Fr(1, 2), Fr(-1, 2)), 4),
    "F(4x4): 0, +-1, 1/2, -2": ((0, 1, -1, Fr(1, 2), -2), 4),
    "F(6x6): 0, +-1, +-2, +-1/2": ((0, 1, -1, 2, -2, Fr(1, 2), Fr(-1, 2)), 6),
}


def toom_cook(points, m, r=3):
    """(A^T, G, B^T) of F(m, r) as float64 arrays (see tests/test_winograd.py)."""
    n = m + r - 1
    pts = [Fr(p) for p in points]

    def vand(k):
        return [[p ** j for j in range(k)] for p in pts] + [[Fr(0)] * (k - 1) + [Fr(1)]]
    aug = [row + [Fr(int(i == j)) for j in range(n)] for i, row in enumerate(vand(n))]
    for c in range(n):
        piv = next(i for i in range(c, n) if aug[i][c] != 0)
        aug[c], aug[piv] = aug[piv], aug[c]
        aug[c] = [v / aug[c][c] for v in aug[c]]
        for i in range(n):
            if i != c and aug[i][c] != 0:
                f = aug[i][c]
                aug[i] = [a - f * b for a, b in zip(aug[i], aug[c])]
    L = [row[n:] for row in aug]
    Em, G = vand(m), vand(r)
    AT = [[Em[i][j] for i in range(n)] for j in range(m)]
    BT = [[L[j][i] for j in range(n)] for i in range(n)]
    for i in range(n):
        nz = [v for v in BT[i] if v != 0]
        s = Fr(math.lcm(*(v.denominator for v in nz)), math.gcd(*(abs(v.numerator) for v in nz)))
        BT[i] = [v * s for v in BT[i]]
        G[i] = [v / s for v in G[i]]
    f = lambda M: np.array([[float(v) for v in row] for row in M])  # noqa: E731
    return f(AT), f(G), f(BT)


def winograd32(x, w, points, m):
    AT, G, BT = toom_cook(points, m)
    n = m + 2
    N, C, H, W = x.shape
    th, tw = -(-(H - 2) // m), -(-(W - 2) // m)
    xp = np.zeros((N, C, th * m + 2, tw * m + 2), np.float32)
    xp[:, :, :H, :W] = x
    s = xp.strides
    d = np.lib.stride_tricks.as_strided(xp, (N, C, th, tw, n, n),
                                        (s[0], s[1], s[2] * m, s[3] * m, s[2], s[3]))
    bt = BT.astype(np.float32)
    V = np.einsum("ij,nctujk,lk->nctuil", bt, d, bt, dtype=np.float32)
    U = np.einsum("ij,fcjk,lk->fcil", G, w.astype(np.float64), G).astype(np.float32)
    M = np.matmul(U.transpose(2, 3, 0, 1).reshape(n * n, -1, C),
                  V.transpose(4, 5, 1, 0, 2, 3).reshape(n * n, C, -1))
    M = M.reshape(n, n, -1, N, th, tw).transpose(3, 2, 4, 5, 0, 1)
    at = AT.astype(np.float32)
    Y = np.einsum("ij,nftujk,lk->nftuil", at, M, at, dtype=np.float32)
    return Y.transpose(0, 1, 2, 4, 3, 5).reshape(N, -1, th * m, tw * m)[:, :, :H - 2, :W - 2]


def direct64(x, w):
    H, W = x.shape[2:]
    x64 = x.astype(np.float64)
    return sum(np.einsum("fc,nchw->nfhw", w[:, :, i, j].astype(np.float64),
                         x64[:, :, i:i + H - 2, j:j + W - 2]) for i in range(3) for j in range(3))


def main():
    rng = np.random.default_rng(0)
    shapes = [(4, 16, 34, 16), (4, 64, 18, 64), (2, 256, 16, 256)]
    print(f"{'points':30s}" + "".join(f"{'C=%d' % s[1]:>10s}" for s in shapes))
    data = []
    for N, C, H, F in shapes:
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        w = (rng.standard_normal((F, C, 3, 3)) * math.sqrt(2 / (9 * C))).astype(np.float32)
        data.append((x, w, direct64(x, w)))
    for name, (points, m) in CANDIDATES.items():
        errs = [np.abs(winograd32(x, w, points, m) - y64).max() / np.abs(y64).max()
                for x, w, y64 in data]
        print(f"{name:30s}" + "".join(f"{e:10.2e}" for e in errs))


if __name__ == "__main__":
    main()
