"""Prototype trials for issue 21 (validation accuracy only; the test set is never evaluated here).

python trial.py --hidden 512 256 --epochs 20 --ema 0.999 --in-drop 0.1 ...
Prints one JSON line.
"""
import argparse
import json
import sys
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--schedule", default="onecycle")
p.add_argument("--ls", type=float, default=0.13)
p.add_argument("--dropout", type=float, default=0.2)
p.add_argument("--wd", type=float, default=6.6e-5)
p.add_argument("--opt", default="adam")
p.add_argument("--bn", type=int, default=1)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--ema", type=float, default=0.0)
p.add_argument("--ema-every", type=int, default=1)
p.add_argument("--ema-start", type=float, default=0.0, help="fraction of the run before EMA starts")
p.add_argument("--swa", type=int, default=0, help="average the weights at the end of the last N epochs")
p.add_argument("--in-drop", type=float, default=0.0)
p.add_argument("--in-drop-kind", default="std", choices=["std", "zero", "layer"])
p.add_argument("--erase", type=float, default=0.0, help="random erasing probability")
p.add_argument("--shift", type=int, default=0)
p.add_argument("--flip", type=float, default=0.0)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--tag", default="")
p.add_argument("--act", default="relu")
p.add_argument("--sub", type=float, default=1.0)
a = p.parse_args()

from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(a.threads)
from mlpnumpy import datasets  # noqa: E402
from mlpnumpy.callbacks import Callback  # noqa: E402
from mlpnumpy.layers import Dropout  # noqa: E402
from mlpnumpy.model import MLP  # noqa: E402
from mlpnumpy.optimizers import OPTIMIZERS  # noqa: E402
from mlpnumpy.preprocessing import Standardizer  # noqa: E402
from mlpnumpy.schedules import schedule_for_run  # noqa: E402
from mlpnumpy.splits import train_val_split  # noqa: E402

t0 = time.perf_counter()
ds = datasets.load("fashion-mnist", None, dtype=np.float32, download=False)
X, y = ds.X_train.reshape(len(ds.X_train), -1), ds.y_train
tr, va = train_val_split(y, 0.1, np.random.default_rng([a.seed, 1]), stratify=True)
Xtr, Xva, ytr, yva = np.ascontiguousarray(X[tr]), X[va], y[tr], y[va]
del ds  # no test set in trials
if a.sub < 1:
    keep = np.random.default_rng(99).permutation(len(Xtr))[:int(a.sub * len(Xtr))]
    Xtr, ytr = np.ascontiguousarray(Xtr[keep]), ytr[keep]

model = MLP([784, *a.hidden, 10], a.act, seed=a.seed, dtype="float32", batch_norm=bool(a.bn), dropout=a.dropout,
            loss={"name": "cross_entropy", "label_smoothing": a.ls})
model.preprocessor = Standardizer().fit(Xtr)
if a.in_drop and a.in_drop_kind == "layer":
    d = Dropout(a.in_drop)
    d.build(model.rng, np.float32)
    model.layers.insert(0, d)
steps = -(-len(Xtr) // a.batch)
opt = OPTIMIZERS[a.opt](lr=a.lr, weight_decay=a.wd)
sched = schedule_for_run(a.schedule, epochs=a.epochs, steps_per_epoch=steps, lr=a.lr)


class InputNoise(Callback):
    """Rewrite the training array each epoch: input dropout (in standardised space) / random erasing."""

    def __init__(self, X, mean, scale):
        self.X, self.orig = X, X.copy()
        self.mean, self.scale = mean.astype(np.float32), scale.astype(np.float32)

    def on_epoch_begin(self, epoch, logs=None):
        rng = self.model.rng
        n = len(self.orig)
        src = self.orig
        if a.shift:
            from mlpnumpy.augment import shift_images
            dy = rng.integers(-a.shift, a.shift + 1, size=n)
            dx = rng.integers(-a.shift, a.shift + 1, size=n)
            shift_images(src.reshape(-1, 28, 28), dy, dx, out=self.X.reshape(-1, 28, 28))
            src = self.X
        if a.flip:
            if src is not self.X:
                self.X[...] = src
            who = np.flatnonzero(rng.random(n) < a.flip)
            imgs = self.X.reshape(-1, 28, 28)
            imgs[who] = imgs[who][:, :, ::-1]
            src = self.X
        if a.in_drop and a.in_drop_kind != "layer":
            thr = int(round(a.in_drop * 256))
            keep = np.frombuffer(rng.bytes(src.size), np.uint8).reshape(src.shape) >= thr
            if a.in_drop_kind == "std":  # x_std * mask / (1 - p) in raw units
                s = np.float32(1 / (1 - a.in_drop))
                np.subtract(src, self.mean, out=self.X)
                self.X *= s
                self.X *= keep
                self.X += self.mean
            else:  # background (raw 0)
                np.multiply(src, keep, out=self.X)
            src = self.X
        if a.erase:
            if src is not self.X:
                self.X[...] = src
            imgs = self.X.reshape(-1, 28, 28)
            who = np.flatnonzero(rng.random(n) < a.erase)
            area = rng.uniform(0.02, 0.25, len(who)) * 784
            ratio = np.exp(rng.uniform(np.log(0.3), np.log(3.3), len(who)))
            h = np.clip(np.round(np.sqrt(area * ratio)), 1, 27).astype(int)
            w = np.clip(np.round(np.sqrt(area / ratio)), 1, 27).astype(int)
            r0 = (rng.random(len(who)) * (29 - h)).astype(int)
            c0 = (rng.random(len(who)) * (29 - w)).astype(int)
            for i, hh, ww, rr, cc in zip(who, h, w, r0, c0):
                imgs[i, rr:rr + hh, cc:cc + ww] = 0.0
        elif src is not self.X:
            self.X[...] = src


class EMA(Callback):
    def __init__(self, decay, every=1, start=0.0):
        self.decay, self.every, self.start = decay, every, start
        self.t = 0

    def on_train_begin(self, logs=None):
        self.arrays = [p.data for p in self.model.parameters()] + \
            [b for l in self.model.layers for b in l.buffers().values()]
        self.avg = None
        self.total = self.params["epochs"] * self.params["steps"] if hasattr(self, "params") else None

    def on_batch_end(self, batch, logs=None):
        self.t += 1
        if self.t % self.every:
            return
        if self.total and self.t < self.start * self.total:
            return
        if self.avg is None:
            self.avg = [w.copy() for w in self.arrays]
            self.n = 1
            return
        self.n += 1
        d = min(self.decay ** self.every, (1 + self.n) / (10 + self.n))
        for m, w in zip(self.avg, self.arrays):
            m *= d
            m += (1 - d) * w

    def on_train_end(self, logs=None):
        self.final = [w.copy() for w in self.arrays]
        for m, w in zip(self.avg, self.arrays):
            w[...] = m


class SWA(Callback):
    def __init__(self, last):
        self.last = last

    def on_train_begin(self, logs=None):
        self.arrays = [p.data for p in self.model.parameters()] + \
            [b for l in self.model.layers for b in l.buffers().values()]
        self.sum, self.k = None, 0
        self.epochs = self.params["epochs"]

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.epochs - self.last:
            if self.sum is None:
                self.sum = [w.astype(np.float64) for w in self.arrays]
            else:
                for s, w in zip(self.sum, self.arrays):
                    s += w
            self.k += 1

    def on_train_end(self, logs=None):
        self.final = [w.copy() for w in self.arrays]
        for s, w in zip(self.sum, self.arrays):
            w[...] = s / self.k


cbs = []
if a.in_drop and a.in_drop_kind != "layer" or a.erase or a.shift or a.flip:
    cbs.append(InputNoise(Xtr, model.preprocessor.mean_, model.preprocessor.scale_))
avg = None
if a.ema:
    avg = EMA(a.ema, a.ema_every, a.ema_start)
elif a.swa:
    avg = SWA(a.swa)
if avg is not None:
    cbs.append(avg)
t1 = time.perf_counter()
h = model.fit(Xtr, ytr, epochs=a.epochs, batch_size=a.batch, optimizer=opt, lr_schedule=sched,
              validation_data=(Xva, yva), callbacks=cbs, verbose=0)
fit_s = time.perf_counter() - t1
for c in cbs:
    if isinstance(c, InputNoise):
        Xtr[...] = c.orig
res = {"args": vars(a), "fit_s": round(fit_s, 1), "val_last_epoch": h.history["val_accuracy"][-1],
       "val_curve": [round(v, 4) for v in h.history["val_accuracy"]],
       "train_acc_last": h.history.get("accuracy", [None])[-1]}
res["val"] = float(model.evaluate(Xva, yva, return_dict=True)["accuracy"])
if avg is not None:
    avg_w = [w.copy() for w in avg.arrays]
    for w, f in zip(avg.arrays, avg.final):
        w[...] = f
    res["val_raw"] = float(model.evaluate(Xva, yva, return_dict=True)["accuracy"])
res["train_eval"] = float(model.evaluate(Xtr[:10000], ytr[:10000], return_dict=True)["accuracy"])
print(json.dumps(res))
with open("/tmp/h21/trials.jsonl", "a") as fh:
    fh.write(json.dumps(res) + "\n")
