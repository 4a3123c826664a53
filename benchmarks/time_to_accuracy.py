"""Wall time to reach 0.90 test accuracy on Fashion-MNIST with the CLI's recipe, mlpnumpy against
PyTorch running the same recipe from the same initial weights on the same data.

The recipe is ``mlpnumpy train --data fashion-mnist --recipe fast``'s (the default until issue 21):
784-256-128-10 ReLU, Adam under a one-cycle schedule peaking at 2e-3, batch 128, 20 epochs, label smoothing 0.1, standardised inputs, 10% of
the training set held out. Both start from the same weights and see the same batches in the same
order, so their accuracy curves differ only by rounding. Only training time is counted; the test
accuracy after each epoch is measured outside the clock.

    python benchmarks/time_to_accuracy.py
"""
from __future__ import annotations

import copy
import json
import time

import numpy as np


def recipe():
    from mlpnumpy.cli.config import defaults_for
    cfg = defaults_for("fashion-mnist", "fast")  # no dropout or decay: the two runs walk the same batches
    return {"hidden": cfg["hidden"], "epochs": cfg["epochs"], "batch_size": cfg["batch_size"], "lr": cfg["lr"],
            "label_smoothing": cfg["label_smoothing"], "validation_split": cfg["validation_split"]}


def run(X, y, Xte, yte, target: float = 0.90, seed: int = 0) -> dict:
    import torch
    from mlpnumpy import MLP, to_torch
    from mlpnumpy.nn.losses import CrossEntropy
    from mlpnumpy.optim.optimizers import Adam
    from mlpnumpy.datasets.preprocessing import Standardizer
    from mlpnumpy.optim.schedules import OneCycleLR
    from mlpnumpy.training.fitting import train_val_split
    r = recipe()
    tr, _ = train_val_split(y, r["validation_split"], np.random.default_rng([seed, 1]), stratify=True)
    Xtr, ytr = X[tr], y[tr]
    st = Standardizer().fit(Xtr)
    Xtr, Xte_s = st.transform(Xtr), st.transform(Xte)
    bs, epochs = r["batch_size"], r["epochs"]
    steps = -(-Xtr.shape[0] // bs)
    dims = [Xtr.shape[1], *r["hidden"], 10]

    model = MLP(dims, seed=seed, loss=CrossEntropy(label_smoothing=r["label_smoothing"]))
    net = to_torch(model)  # PyTorch starts from the same weights
    # ... and walks the same batches: fit draws each epoch's permutation from the model's generator
    # (and nothing else here: no validation split, no dropout), so a copy of it replays the order
    batch_order = copy.deepcopy(model.rng)
    opt, sched = Adam(lr=r["lr"]), OneCycleLR(max_lr=r["lr"], total_steps=epochs * steps)
    ours = {"epochs": [], "seconds": []}
    total = 0.0
    for e in range(epochs):
        h = model.fit(Xtr, ytr, epochs=1, batch_size=bs, optimizer=opt if e == 0 else None,
                      lr_schedule=sched if e == 0 else None, verbose=False)
        total += h.history["seconds"][0]
        acc = float(np.mean(model.predict(Xte_s) == yte))
        ours["epochs"].append(acc)
        ours["seconds"].append(total)

    topt = torch.optim.Adam(net.parameters(), lr=r["lr"])
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=r["lr"], total_steps=epochs * steps,
                                                 cycle_momentum=False)
    lossf = torch.nn.CrossEntropyLoss(label_smoothing=r["label_smoothing"])
    Xt, yt, Xtet = torch.from_numpy(Xtr), torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(Xte_s)
    theirs = {"epochs": [], "seconds": []}
    total = 0.0
    for e in range(epochs):
        perm = torch.from_numpy(batch_order.permutation(Xtr.shape[0]))
        t = time.perf_counter()
        net.train()
        for s in range(0, Xtr.shape[0], bs):
            idx = perm[s:s + bs]
            topt.zero_grad(set_to_none=True)
            lossf(net(Xt[idx]), yt[idx]).backward()
            topt.step()
            tsched.step()
        total += time.perf_counter() - t
        net.eval()
        with torch.no_grad():
            acc = float((net(Xtet).argmax(1).numpy() == yte).mean())
        theirs["epochs"].append(acc)
        theirs["seconds"].append(total)

    def first(d):
        for i, a in enumerate(d["epochs"]):
            if a >= target:
                return i + 1, d["seconds"][i]
        return None, None
    e1, s1 = first(ours)
    e2, s2 = first(theirs)
    per_epoch = ours["seconds"][-1] / epochs, theirs["seconds"][-1] / epochs
    # the matrix multiplies alone of one epoch of this recipe (its training rows, its batch size):
    # no trainer's epoch on this machine is shorter
    from bench_training import floor_epoch, median_time
    fl = floor_epoch(Xtr, dims, bs)
    fl()
    return {"recipe": r, "target": target, "mlpnumpy_epoch": e1, "mlpnumpy_s": s1, "torch_epoch": e2, "torch_s": s2,
            "mlpnumpy_epoch_s": per_epoch[0], "torch_epoch_s": per_epoch[1], "floor_epoch_s": median_time(fl, 5),
            "train_rows": int(Xtr.shape[0]),
            "mlpnumpy_curve": ours, "torch_curve": theirs,
            "mlpnumpy_final_acc": ours["epochs"][-1], "torch_final_acc": theirs["epochs"][-1]}


if __name__ == "__main__":
    import torch
    torch.set_num_threads(2)
    from mlpnumpy.datasets import load
    d = load("fashion-mnist")
    res = run(d.X_train, d.y_train, d.X_test, d.y_test)
    print(json.dumps({k: v for k, v in res.items() if not k.endswith("curve")}, indent=1))
