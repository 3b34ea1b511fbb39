"""Print the comparison tables: fastconv vs NumPy vs PyTorch, interleaved.

A thin wrapper over :func:`fastconv.bench.main` (the ``fastconv bench``
command); the same options, e.g.::

    python benchmarks/compare.py --quick
    python benchmarks/compare.py --ops conv2d --threads 1,2 --json results.json
"""
import sys

from fastconv.bench import main

if __name__ == "__main__":
    sys.exit(main())
