"""The seed's MNIST CNN in PyTorch: the peer that `npm run bench:train` measures the service against.

Same model as the service's `cnn` architecture (two 5x5 conv + ReLU + 2x2 max-pool blocks with 16 and
32 filters, then a dense layer over the 10 digits), cross-entropy, the whole data set already in memory
as float tensors. Reads the IDX files the service trains on. Two recipes:

- `classic` (default): the method's script as it runs — batch 128, Adam 1e-3, a constant rate;
- `one-cycle`: the service's default recipe — batch 256, Adam with betas (0.7, 0.9), a one-cycle rate
  peaking at 1e-2 (PyTorch's OneCycleLR: 30 % cosine warm-up from peak/25, cosine fall to peak/25/1e4,
  no momentum cycle), and the service's initialisation (Glorot-uniform weights, zero biases).

    python3 bench/pytorch_mnist.py --data DIR [--recipe classic|one-cycle] [--epochs 1] [--threads 2] [--target 0.99] [--inference-rounds 1]

Prints one JSON object per line: an "epoch" line after every epoch (training images/s, test accuracy,
wall seconds since training started) and a final "result" line (also inference images/s over the test
set, the median of --inference-rounds timed passes at batch 1000, and the seconds until the test
accuracy first reached --target, if it did). --epochs 0 times inference only, on the untrained
model: the same arithmetic as a trained one.
"""

import argparse
import json
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    _, dtype, dims = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, images, labels):
    x = torch.from_numpy(read_idx(f"{data_dir}/{images}").astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(read_idx(f"{data_dir}/{labels}").astype(np.int64))
    return x, y


class Net(nn.Module):
    def __init__(self, glorot=False):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 7 * 7, 10)
        if glorot:  # as TensorFlow.js initialises the service's layers
            for m in (self.features[0], self.features[3], self.classifier):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def accuracy(model, x, y, batch_size=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
    return correct / len(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="directory with the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recipe", choices=["classic", "one-cycle"], default="classic")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 (classic), 256 (one-cycle)")
    parser.add_argument("--target", type=float, default=None, help="stop once the test accuracy reaches this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inference-rounds", type=int, default=1, help="timed passes over the test set; the median is reported")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train = load(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    x_test, y_test = load(args.data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    one_cycle = args.recipe == "one-cycle"
    batch_size = args.batch_size or (256 if one_cycle else 128)
    model = Net(glorot=one_cycle)
    if one_cycle:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.7, 0.9))
        steps = (len(x_train) + batch_size - 1) // batch_size * args.epochs
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps, cycle_momentum=False)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scheduler = None
    loss_fn = nn.CrossEntropyLoss()

    started = time.perf_counter()
    train_seconds = 0.0
    trained = 0
    reached = None
    test_acc = None
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train))
        t0 = time.perf_counter()
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            if scheduler:
                scheduler.step()
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        trained += len(order)
        test_acc = accuracy(model, x_test, y_test)
        elapsed = time.perf_counter() - started
        print(json.dumps({"type": "epoch", "epoch": epoch, "trainImagesPerSec": len(order) / seconds, "testAccuracy": test_acc, "elapsedSec": elapsed}), flush=True)
        if args.target is not None and test_acc >= args.target:
            reached = elapsed
            break

    accuracy(model, x_test[:1000], y_test[:1000])  # warm-up
    passes = []
    for _ in range(args.inference_rounds):
        t0 = time.perf_counter()
        accuracy(model, x_test, y_test)
        passes.append(len(x_test) / (time.perf_counter() - t0))
    inference = float(np.median(passes))
    print(json.dumps({
        "type": "result",
        "torch": torch.__version__,
        "recipe": args.recipe,
        "batchSize": batch_size,
        "threads": torch.get_num_threads(),
        "trainImagesPerSec": trained / train_seconds if trained else None,
        "inferenceImagesPerSec": inference,
        "inferencePasses": passes,
        "testAccuracy": test_acc,
        "secondsToTarget": reached,
    }), flush=True)


if __name__ == "__main__":
    main()
