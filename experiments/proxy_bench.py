"""The GPU rate behind gandef_tf.estimate's GPU times, measured with PyTorch; its output
figures/gpu_proxy/h100.json is the record estimate reads.

    python3 -m experiments.proxy_bench > figures/gpu_proxy/h100.json   # needs torch, no TF

TensorFlow was not installable on the GPU machine lent to us (no network there, and its
wheel is far larger than what could be carried), so this times a PyTorch version of the
same training and evaluation steps instead: LeNet (Table 3) and allCNN (Table 4), the
paper's batch sizes and PGD settings, Mix PGD's step (PGD examples from the model in
inference mode, then one update on the original and adversarial halves), and PGD-2 on an
evaluation batch of 250. It reports FLOP/s counted the way gandef_tf.estimate counts them
(forward FLOPs per example x passes), so estimate can divide a run's FLOPs by it. It is
a proxy for our TensorFlow code on that GPU, labelled as such wherever it is used.
"""

import json
import platform
import time

import torch
from torch import nn

# gandef_tf.estimate.forward_flops: 2 x multiply-adds of the convolutions and dense layers.
FORWARD_FLOPS = {"mnist": 27_767_808, "cifar10": 798_920_448}
# (batch, eps, step, training PGD iterations, PGD-2 iterations): REFERENCE.md / attacks.py
SETTINGS = {"mnist": (50, 0.3, 0.01, 40, 80), "cifar10": (128, 8 / 255, 2 / 255, 7, 20)}


def lenet():
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Linear(1024, 10))


def all_cnn():
    def convs(cin, cout, n, k=3, pad=1):
        out = []
        for i in range(n):
            out += [nn.Conv2d(cin if i == 0 else cout, cout, k, padding=pad), nn.ReLU()]
        return out

    return nn.Sequential(nn.Dropout(0.2), *convs(3, 96, 3), nn.MaxPool2d(2), nn.Dropout(0.5),
                         *convs(96, 192, 3), nn.MaxPool2d(2), nn.Dropout(0.5),
                         *convs(192, 192, 1, 3, 0), *convs(192, 192, 2, 1, 0),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(192, 10))


def pgd(model, x, y, eps, step, iters):
    model.eval()
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(iters):
        adv.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv


def timed(fn, steps):
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def measure(dataset, steps=10):
    batch, eps, step, train_iters, eval_iters = SETTINGS[dataset]
    model = (lenet() if dataset == "mnist" else all_cnn()).cuda()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    shape = (1, 28, 28) if dataset == "mnist" else (3, 32, 32)
    x, y = torch.rand(batch, *shape, device="cuda"), torch.randint(0, 10, (batch,), device="cuda")

    def train_step():
        adv = pgd(model, x, y, eps, step, train_iters)
        model.train()
        loss = nn.functional.cross_entropy(model(torch.cat([x, adv])), torch.cat([y, y]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    xe, ye = torch.rand(250, *shape, device="cuda"), torch.randint(0, 10, (250,), device="cuda")

    def eval_step():
        adv = pgd(model, xe, ye, eps, step, eval_iters)
        with torch.no_grad():
            model(adv).argmax(1)

    t_train, t_eval = timed(train_step, steps), timed(eval_step, steps)
    flops = FORWARD_FLOPS[dataset]
    return {"train_step_seconds": t_train, "eval_batch_seconds": t_eval,
            # Mix PGD: 2 passes per attack iteration, 3 per example for the update of 2x batch
            "train_flops_per_s": batch * (2 * train_iters + 6) * flops / t_train,
            "eval_flops_per_s": 250 * (2 * eval_iters + 1) * flops / t_eval,
            "batch": batch, "train_pgd_iterations": train_iters, "eval_pgd_iterations": eval_iters}


def main():
    # TensorFlow runs float32 convolutions and matmuls in TF32 on these GPUs by default.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    out = {"device": f"1x GPU ({torch.cuda.get_device_name()})", "torch": torch.__version__,
           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
           "proxy": "PyTorch version of the same steps, not this repository's TensorFlow code",
           "datasets": {d: measure(d) for d in ("mnist", "cifar10")}}
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
