"""Images/s of ResNet-20 inference with fastconv.dask: one process vs LocalClusters.

What ``fastconv bench`` cannot: scaling out over Dask schedulers and worker
processes, and the cost per chunk.  The model and its image shape are
ResNet-20 of the model suite (:data:`fastconv.bench_suite.MODELS`).

Configurations, run in interleaved rounds (a round runs each once):

  1 process, 1 thread    plain loop over batches, fastconv.set_num_threads(1)
  1 process, T threads   the same with T threads (T = the core count)
  threads scheduler      predict(...).compute(scheduler="threads"), T threads
  2 workers x 1 thread   LocalCluster(n_workers=2, threads_per_worker=1)
  1 worker x 2 threads   LocalCluster(n_workers=1, threads_per_worker=2)
  ... default malloc     2 workers x 1 thread with distributed's default
                         worker environment: MALLOC_TRIM_THRESHOLD_=65536
                         alone, which makes glibc map (and fault in) every
                         large block afresh; the clusters above add
                         MALLOC_MMAP_THRESHOLD_=32 MiB (see README)

The images (float32, the model's 3x32x32, random) are made by the workers
and persisted there before timing, so no configuration pays for moving them
from the client; the scores come back to the client (counted).  Every configuration
runs the same chunks in the same batches, so all must return the same bits
(checked).  Besides wall-clock images/s, images per CPU-second (user + system
time of every process involved: the client, which hosts the scheduler, and
the workers), which the other load on a shared machine disturbs far less.
Overhead per chunk: the same Dask configurations on ``--tiny`` one-image
chunks through a model that does next to nothing (global average pooling),
wall time / chunks.

    python -P benchmarks/bench_dask.py [--images 20000] [--chunk 1000]
        [--batch 250] [--rounds 3] [--tiny 2000]
"""
import argparse
import logging
import statistics
import time
import warnings

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, futures_of
from threadpoolctl import threadpool_limits

import fastconv as fc
from fastconv import layers as L
from fastconv.bench_suite import MODELS
from fastconv.dask import predict


def _single_process(model, x, chunks, batch):
    """The plain loop: each chunk in batches, as predict runs it."""
    model = model.eval()
    out, start = [], 0
    for n in chunks:
        for s in range(start, start + n, batch):
            out.append(model(x[s:min(s + batch, start + n)]))
        start += n
    return np.concatenate(out)


def _wait(futures):
    """Until the futures are computed (distributed.wait wants a default
    client; these clients are not)."""
    while not all(f.done() for f in futures):
        time.sleep(0.01)


def _timed(fn, clients=()):
    """Wall seconds, CPU seconds (this process and the clients' workers)
    and the result of fn()."""
    def cpu():
        return time.process_time() + sum(
            sum(c.run(time.process_time).values()) for c in clients)
    c0, t0 = cpu(), time.perf_counter()
    result = fn()
    t1 = time.perf_counter()
    return t1 - t0, cpu() - c0, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", type=int, default=2000,
                        help="one-image chunks for the overhead per chunk")
    args = parser.parse_args()
    cores = fc.get_num_threads()
    spec = MODELS["resnet20"]
    model = spec.build().eval()
    image = spec.input_shape
    print(f"fastconv {fc.__version__}, gemm isa {fc._ext.gemm_isa()}, "
          f"{cores} threads by default; model "
          f"fastconv.models.resnet20"
          f" ({sum(p.size for p in model.params.values()):,} parameters)")
    print(f"{args.images} images {'x'.join(map(str, image))} float32, chunks of {args.chunk}, "
          f"batches of {args.batch}, {args.rounds} interleaved rounds")

    shape = (args.images, *image)
    graph = da.random.default_rng(0).standard_normal(
        shape, chunks=(args.chunk, -1, -1, -1), dtype=np.float32)
    x = graph.compute(scheduler="threads")
    local = da.from_array(x, chunks=graph.chunks)
    tiny_local = da.random.default_rng(1).standard_normal(
        (args.tiny, *image), chunks=(1, -1, -1, -1),
        dtype=np.float32).persist(scheduler="threads")
    tiny_model = L.Sequential(L.GlobalAvgPool2d(), L.Flatten())

    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Port .* is already in use")
    clusters = {}
    heap = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 2**25}
    for name, workers, threads, env in (
            ("2 workers x 1 thread", 2, 1, heap),
            ("1 worker x 2 threads", 1, 2, heap),
            ("2 x 1, default malloc", 2, 1, {})):
        with dask.config.set(env):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=threads,
                                   processes=True, host="127.0.0.1",
                                   dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
        images = client.persist(graph)
        tiny = client.persist(da.random.default_rng(1).standard_normal(
            (args.tiny, *image), chunks=(1, -1, -1, -1), dtype=np.float32))
        _wait(futures_of(images) + futures_of(tiny))
        clusters[name] = (cluster, client, images, tiny)

    def one_process(threads):
        def run():
            fc.set_num_threads(threads)
            try:
                return _single_process(model, x, graph.chunks[0], args.batch)
            finally:
                fc.set_num_threads(cores)
        return run

    def threaded(data, net):
        def run():
            with threadpool_limits(1, user_api="blas"):
                return predict(net, data, batch_size=args.batch).compute(
                    scheduler="threads", num_workers=cores)
        return run

    def on_cluster(name, tiny=False):
        _, client, images, tiny_images = clusters[name]
        data, net = (tiny_images, tiny_model) if tiny else (images, model)

        def run():
            return client.compute(
                predict(net, data, batch_size=args.batch)).result()
        return run

    runs = {"1 process, 1 thread": one_process(1),
            f"1 process, {cores} threads": one_process(cores),
            f"threads scheduler, {cores}": threaded(local, model)}
    runs.update({name: on_cluster(name) for name in clusters})
    tiny_runs = {f"threads scheduler, {cores}": threaded(tiny_local, tiny_model)}
    tiny_runs.update({name: on_cluster(name, tiny=True) for name in clusters})

    for run in tiny_runs.values():          # warm up: imports, first tasks
        run()
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    tiny_wall = {name: [] for name in tiny_runs}
    want = None
    names = list(runs)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]   # rotate
        for name in order:
            clients = [clusters[name][1]] if name in clusters else []
            seconds, cpu_seconds, scores = _timed(runs[name], clients)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            if want is None:
                want = scores
            elif not np.array_equal(scores, want):
                raise SystemExit(f"{name}: scores differ from the first run's")
        for name, run in tiny_runs.items():
            tiny_wall[name].append(_timed(run)[0])
        print(f"round {r + 1}: " + ", ".join(
            f"{name} {args.images / wall[name][-1]:,.0f}" for name in names),
            flush=True)

    n_chunks = len(graph.chunks[0])
    print(f"\nimages/s: median of {args.rounds} rounds (min-max); per CPU-s: "
          f"images per CPU-second, median; overhead per chunk: from "
          f"{args.tiny} one-image chunks, median")
    print(f"{'configuration':<24}{'images/s':>9}  {'(min-max)':<13}"
          f"{'per CPU-s':>10}{'per chunk':>11}{'share':>8}")
    for name in names:
        rate = [args.images / t for t in wall[name]]
        row = (f"{name:<24}{statistics.median(rate):>9,.0f}  "
               f"{f'({min(rate):,.0f}-{max(rate):,.0f})':<13}"
               f"{args.images / statistics.median(cpu[name]):>10,.0f}")
        if name in tiny_wall:
            per_chunk = statistics.median(tiny_wall[name]) / args.tiny
            share = per_chunk * n_chunks / statistics.median(wall[name])
            row += f"{per_chunk * 1e3:>8.2f} ms{share:>8.2%}"
        print(row)
    print(f"(share: {n_chunks} chunks x the overhead per chunk / the run's "
          f"time; the per-chunk figure includes the tiny model's own work)")
    for cluster, client, _, _ in clusters.values():
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
