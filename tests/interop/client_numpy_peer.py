"""A stock Flower NumPyClient with the demo client's math, for mixed federations.

Run as: python client_numpy_peer.py HOST:PORT TARGET NUM_EXAMPLES SHAPES
(SHAPES like "3,2;4"), or python client_numpy_peer.py HOST:PORT nudge MODEL.npz
NUM_EXAMPLES for a peer of petal-client's NCF model: it serves the .npz arrays
as its initial model and "trains" by adding 0.001 to every weight. Joins with
flwr.client.start_client (grpc-bidi) and exits when the server says goodbye.
Its metrics carry "impl": "python".
"""

import sys

import numpy as np

import flwr
from flwr.client import NumPyClient


class QuadraticNumPyClient(NumPyClient):
    def __init__(self, target, num_examples, shapes):
        self.target = target
        self.num_examples = num_examples
        self.shapes = shapes

    def get_parameters(self, config):
        return [np.zeros(s, dtype=np.float32) for s in self.shapes]

    def fit(self, parameters, config):
        lr = float(config.get("lr", 0.1))
        epochs = int(config.get("local_epochs", 1))
        mu = float(config.get("proximal_mu", 0.0))
        out = []
        loss = 0.0
        for a in parameters:
            w = a.astype(np.float64)
            wg = w.copy()
            for _ in range(epochs):
                w = w - lr * ((w - self.target) + mu * (w - wg))
            w = w.astype(a.dtype)
            loss += float(0.5 * np.sum((w.astype(np.float64) - self.target) ** 2))
            out.append(w)
        metrics = {"loss": loss, "proximal_mu": mu, "lr": lr, "local_epochs": epochs,
                   "target": self.target, "impl": "python"}
        return out, self.num_examples, metrics

    def evaluate(self, parameters, config):
        loss = sum(float(0.5 * np.sum((a.astype(np.float64) - self.target) ** 2))
                   for a in parameters)
        return loss, self.num_examples, {"target": self.target}


class NudgeNumPyClient(NumPyClient):
    STEP = np.float32(0.001)

    def __init__(self, arrays, num_examples):
        self.arrays = arrays
        self.num_examples = num_examples

    def get_parameters(self, config):
        return self.arrays

    def fit(self, parameters, config):
        return [a + self.STEP for a in parameters], self.num_examples, {"impl": "python"}

    def evaluate(self, parameters, config):
        return 0.5, self.num_examples, {"impl": "python"}


def main():
    if sys.argv[2] == "nudge":
        with np.load(sys.argv[3]) as z:
            arrays = [z[k] for k in z.files]
        client = NudgeNumPyClient(arrays, int(sys.argv[4]))
        flwr.client.start_client(server_address=sys.argv[1], client=client.to_client())
        return
    address, target, n, shapes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    shape_list = [tuple(int(d) for d in part.split(",")) if part else ()
                  for part in shapes.split(";")]
    flwr.client.start_client(server_address=address,
                             client=QuadraticNumPyClient(target, n, shape_list).to_client())


if __name__ == "__main__":
    main()
