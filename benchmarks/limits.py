"""What a NumPy-only training step can reach here, and what the fast path's numba kernels change: the
costs above the matrix-multiply floor, measured one by one for 784-256-128-10 at batch 128.

1. **Gathering a shuffled batch**: ``X[idx]`` for 128 random rows of a 60,000 x 784 float32 array
   (the floor reads contiguous slices, which cost nothing to form).
2. **A small NumPy call after a large multiply**: the same ``argmax`` of a 128 x 10 array, timed in a
   tight loop and right after the first layer's 128 x 784 x 256 product, when its caches are cold.
   A training step makes about forty such calls (bias adds, activations and their derivatives, the
   loss, the accuracy, the bias updates).
3. **Adam's element-wise update in NumPy**: ten NumPy passes over every parameter (the first
   layer's 200,704 weights among them), the same sequence cache-blocked (faster alone, but 2-5%
   slower inside ``fit`` when tried there), and nine of the ten passes over the first layer, each
   timed alone while its arrays are hot: a sum that no ordering of NumPy calls gets below.
4. **The budget**: how much above the floor a step may cost for 1.2 x the floor and for Adam within
   1.15 x of SGD, next to the sums of the items above.
5. **The leanest NumPy loop** (``bench_training.numpy_loop_epoch``, a whole SGD epoch as one flat
   loop) on shuffled batches, and on contiguous slices, which need no gather at all: what a
   NumPy-only trainer reaches, with and without item 1.
6. **The fast path's numba kernels**: Adam's whole update of the first layer's weights in one pass,
   serial and over numba's threads, and whole fast-path epochs (SGD and Adam) with the parallel loops
   off and on from 65,536 entries: whether ``parallel=True`` pays on this machine's cores.

    python benchmarks/limits.py
"""
from __future__ import annotations

import time

import numpy as np

from bench_training import floor_epoch, make_batches, median_time, numpy_loop_epoch
from mlpnumpy._kernels import _blas


def per_call(fn, reps=300, rounds=7) -> float:
    """Median over ``rounds`` of the mean time of ``reps`` calls, in microseconds."""
    for _ in range(20):
        fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t) / reps)
    return float(np.median(times)) * 1e6


def adam_numpy(w, g, n, u, s, k=1e-6, b1=0.9, b2=0.999, eps=1e-8):
    """Adam as NumPy passes over the moments without their (1 - beta) factors: n = b1 n + g,
    u = b2 u + g^2, w -= k n / (sqrt(u) + eps)."""
    n *= b1
    n += g
    np.multiply(g, g, out=s)
    u *= b2
    u += s
    np.sqrt(u, out=s)
    s += eps
    np.divide(n, s, out=s)
    s *= k
    w -= s


def main():
    rng = np.random.default_rng(0)
    f32 = np.float32
    X = rng.standard_normal((60000, 784), dtype=f32)
    dims = [784, 256, 128, 10]
    Ws = [(rng.standard_normal((a, b), dtype=f32) * 0.05) for a, b in zip(dims[:-1], dims[1:])]
    bs = 128
    steps = -(-X.shape[0] // bs)

    # 4 (first, for the budget): the floor, bench_training.py's, per step
    floor_run = floor_epoch(X, dims, bs)
    floor_run()
    floor = median_time(floor_run, 5) * 1e6 / steps
    grads = [np.empty_like(W) for W in Ws]

    # 1: the gather
    perm = rng.permutation(X.shape[0])
    at = [0]

    def gather():
        s = at[0]
        at[0] = (s + bs) % (X.shape[0] - bs)
        return X[perm[s:s + bs]]
    t_gather = per_call(gather, reps=400)

    # 2: a small call, hot and after a large product
    xb, W1 = X[:bs].copy(), Ws[0]
    z = rng.standard_normal((bs, 10), dtype=f32)
    t_hot = per_call(lambda: z.argmax(axis=1), reps=3000)
    cold = []
    for _ in range(2000):
        xb @ W1
        t = time.perf_counter()
        z.argmax(axis=1)
        cold.append(time.perf_counter() - t)
    t_cold = float(np.median(cold)) * 1e6

    # 3: Adam's update on all six parameters, and SGD's fused one for comparison
    shapes = [(784, 256), (256,), (256, 128), (128,), (128, 10), (10,)]
    arrs = [[rng.standard_normal(sh, dtype=f32) * 0.01 if j == 1 else
             (np.full(sh, 1e-4, f32) if j == 3 else rng.standard_normal(sh, dtype=f32))
             for j in range(5)] for sh in shapes]  # w, g, n, u, s
    t_adam = per_call(lambda: [adam_numpy(*a) for a in arrs], reps=100)
    flat = [[x.reshape(-1) for x in a] for a in arrs]
    block = 1 << 15
    blocked = [[x[i:i + block] for x in a[:4]] + [a[4][:min(block, a[4].size - i)]]
               for a in flat for i in range(0, a[0].size, block)]
    t_adam_blocked = per_call(lambda: [adam_numpy(*a) for a in blocked], reps=100)
    w, g, n, u, s = flat[0]
    # scalings are timed into s (repeated in place they would decay into slow subnormal numbers)
    one_pass = {"n *= b1": lambda: np.multiply(n, f32(0.9), out=s), "n += g": lambda: np.add(n, g, out=n),
                "s = g * g": lambda: np.multiply(g, g, out=s), "u *= b2": lambda: np.multiply(u, f32(0.999), out=s),
                "u += s": lambda: np.add(u, s, out=u), "s = sqrt(u)": lambda: np.sqrt(u, out=s),
                "s += eps": lambda: np.add(s, f32(1e-8), out=s), "s = n / s": lambda: np.divide(n, s, out=s),
                "w -= s": lambda: np.subtract(w, s, out=w)}
    t_passes = {k: per_call(fn, reps=300) for k, fn in one_pass.items()}
    xs = [xb, rng.standard_normal((bs, 256), dtype=f32), rng.standard_normal((bs, 128), dtype=f32)]
    dzs = [rng.standard_normal((bs, d), dtype=f32) for d in dims[1:]]

    def sgd_update():
        for x, dz, W in zip(xs, dzs, Ws):
            if not _blas.gemm(-1e-6, x.T, dz, 1.0, W):
                W -= f32(1e-6) * (x.T @ dz)
    t_sgd_update = per_call(sgd_update, reps=100)

    def adam_grads():
        for x, dz, gr in zip(xs, dzs, grads):
            np.matmul(x.T, dz, out=gr)
    t_adam_grads = per_call(adam_grads, reps=100)

    # 5: the leanest NumPy loop, shuffled and in order (slices are views: no gather)
    y = rng.integers(0, dims[-1], X.shape[0])
    t_loops = {}
    for name, batches in (("shuffled batches", make_batches(X.shape[0], bs, 0)),
                          ("contiguous slices, no gather", [slice(s, s + bs) for s in range(0, X.shape[0], bs)])):
        loop = numpy_loop_epoch(X, y, dims, bs, batches)
        loop()
        t_loops[name] = median_time(loop, 3) * 1e6 / steps

    print(f"floor step (the matrix multiplies alone): {floor:.0f} us; x {steps} steps = "
          f"{floor * steps / 1e6:.3f} s per epoch")
    print(f"1. batch gather X[idx], 128 random rows: {t_gather:.0f} us per step "
          f"(x {steps} = {t_gather * steps / 1e3:.0f} ms per epoch)")
    print(f"2. argmax of 128 x 10: {t_hot:.1f} us in a tight loop, {t_cold:.1f} us right after a "
          f"128 x 784 x 256 product; forty such calls: {40 * t_hot:.0f}-{40 * t_cold:.0f} us per step")
    print(f"3. Adam element-wise update, all parameters: {t_adam:.0f} us as ten NumPy passes, "
          f"{t_adam_blocked:.0f} us cache-blocked ({block} entries); nine of its passes over the first "
          f"layer, each alone and hot: {sum(t_passes.values()):.0f} us "
          f"({', '.join(f'{k} {v:.0f}' for k, v in t_passes.items())})")
    print(f"   weight gradients as arrays (Adam) {t_adam_grads:.0f} us, against SGD's fused gemm updates "
          f"{t_sgd_update:.0f} us")
    print(f"4. budget above the floor for 1.2 x the floor: {0.2 * floor:.0f} us per step; gather + forty "
          f"small calls: {t_gather + 40 * t_hot:.0f}-{t_gather + 40 * t_cold:.0f} us")
    sgd_step = floor + t_gather + 40 * t_hot
    print(f"   Adam within 1.15 x SGD allows {0.15 * sgd_step:.0f} us per step for Adam's extra work "
          f"(taking an SGD step of floor + gather + forty hot calls = {sgd_step:.0f} us); its element-wise "
          f"passes alone take {min(t_adam, t_adam_blocked):.0f} us")
    print("5. the leanest NumPy SGD loop: " + "; ".join(
        f"{k} {v:.0f} us per step ({v / floor:.2f} x the floor)" for k, v in t_loops.items()))
    fast_kernels(X, y, dims, bs, floor, steps)


def fast_kernels(X, y, dims, bs, floor, steps):
    """Item 6: numba's serial and parallel loops, alone and inside fast-path epochs."""
    try:
        from mlpnumpy._kernels import numba_kernels as K
    except ImportError:
        print("6. numba is not installed: the fast path runs its NumPy kernels")
        return
    import numba
    from mlpnumpy import MLP
    rng = np.random.default_rng(1)
    n = dims[0] * dims[1]
    w, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32) * 0.01
    m, v, s1 = np.zeros_like(w), np.full_like(w, 1e-4), np.zeros(1, np.float32)
    args = (1.0, 0.0, 0.9, 0.1, 0.999, 0.001, 1e-6, 0.5, 1e-8, False, False, 1e-31)
    t_serial = per_call(lambda: K._adam_serial(w, g, m, v, s1, *args), reps=200)
    t_par = per_call(lambda: K._adam_parallel(w, g, m, v, s1, *args), reps=200)
    print(f"6. Adam's fused update of {n:,} float32 weights: {t_serial:.0f} us serial, {t_par:.0f} us over "
          f"{numba.get_num_threads()} numba threads ({numba.threading_layer()} layer)")
    saved = K.PARALLEL_FROM
    epochs = {}
    try:
        for opt in ("sgd", "adam"):
            for par in (None, 1 << 16):
                K.PARALLEL_FROM = par
                model = MLP(dims, seed=0, path="fast")
                model.fit(X[:bs * 8], y[:bs * 8], epochs=1, batch_size=bs, optimizer=opt, verbose=False)
                epochs[opt, par] = median_time(lambda: model.fit(X, y, epochs=1, batch_size=bs, verbose=False), 3)
    finally:
        K.PARALLEL_FROM = saved
    for opt in ("sgd", "adam"):
        a, b = epochs[opt, None], epochs[opt, 1 << 16]
        print(f"   fast-path {opt} epoch: serial loops {a:.3f} s ({a / (floor * steps / 1e6):.2f} x the floor), "
              f"parallel from 65,536 entries {b:.3f} s ({b / a:.2f} x serial)")


if __name__ == "__main__":
    main()
