"""The OpenMP wait policy fastconv gives its runtime (libgomp reads it once,
when the compiled extension loads), unless the user chose one."""
import os

__all__ = ["SPINCOUNT", "user_policy"]

# How long an idle OpenMP thread spins before it sleeps, in libgomp's
# GOMP_SPINCOUNT units (about 100 per microsecond): about 1 ms.
#
# - libgomp's default (about 3 ms) collapses when other processes want the
#   cores: a thread that has finished spins on a core another one needs.
# - Threads that sleep at once (OMP_WAIT_POLICY=PASSIVE), or after 0.1 ms
#   (10000, fastconv's earlier setting), must be woken for many calls.
#   On virtual machines a sleeping vCPU is slow to wake: with 10000, 2-thread
#   kernel calls timed back to back were up to 2.4x slower than with 100000
#   (cifar-mid conv2d forward 3.3 vs 1.4 ms, batch-1 0.87 vs 0.58 ms; Xeon
#   SPR, 2 vCPUs), while whole-model steps moved by 0-3%.
SPINCOUNT = "100000"


def user_policy(environ=os.environ):
    """Whether the user set OpenMP's wait policy (then it is left alone)."""
    return any(v in environ for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
