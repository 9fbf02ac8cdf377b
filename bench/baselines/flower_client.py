"""The Python baseline client: a stock Flower NumPyClient (flwr.client.start_client,
grpc-bidi) training the PyTorch TagNCF of tag_ncf_torch.py on the data one petal-client
holds, with the hyperparameters of the same petal-client YAML.

  .venv/bin/python bench/baselines/flower_client.py --data client0.npz \
      --config configs/federation/ml100k/client.yaml --server 127.0.0.1:8080
  ... --export-initial init.npz      build data + model, write the global arrays, exit
  ... --standalone 3                 train 3 local epochs without a server, print JSON

--data is written by `petal_bench_export` from the same YAML and partition id.
Fit metrics use petal-client's names (train_loss, num_samples, train_seconds,
samples_per_second); evaluate metrics loss, hr@K, ndcg@K; num_examples as Petal (training
positives for fit, ranking cases for evaluate). Exit status 0, 2 for bad arguments.
"""

import argparse
import json
import os
import resource
import sys
import time

T_START = time.perf_counter()

import flwr  # noqa: E402  (a Flower client imports it; start-up includes it)
import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tag_ncf_torch  # noqa: E402


def settings(path, overrides):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    for item in overrides:
        key, _, value = item.partition("=")
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    model = cfg.get("model", {})
    train = cfg.get("train", {})
    if model.get("mode", "implicit") != "implicit" or not model.get("use_tags", True) or \
            model.get("gmf_only", False) or not model.get("use_biases", True):
        raise SystemExit("flower_client.py mirrors the implicit, tags, biases, NeuMF variant only")
    if train.get("optimizer", "adam") != "adam":
        raise SystemExit("flower_client.py mirrors optimizer adam only")
    for key in ("user_dropout", "item_dropout", "proximal_mu", "clipping_norm"):
        if train.get(key, 0):
            raise SystemExit(f"flower_client.py does not mirror train.{key}")
    return {
        "seed": int(cfg.get("client", {}).get("seed", 1)),
        "threads": int(cfg.get("client", {}).get("threads", 1)),
        "epochs": int(train.get("epochs", 1)),
        "k": int(cfg.get("eval", {}).get("k", 10)),
        "trainer": dict(batch_size=int(train.get("batch_size", 256)), lr=float(train.get("lr", 1e-3)),
                        weight_decay=float(train.get("weight_decay", 0.0)),
                        embedding_reg=float(train.get("embedding_reg", 0.0)),
                        num_negatives=int(train.get("num_negatives", 4)),
                        model_kw=dict(gmf_dim=int(model.get("gmf_dim", 32)),
                                      mlp_dim=int(model.get("mlp_embedding_dim", 32)),
                                      tag_dim=int(model.get("tag_dim", 32)),
                                      layers=tuple(model.get("mlp_layers", [64, 32, 16])))),
    }


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help=".npz from petal_bench_export")
    p.add_argument("--config", required=True, help="petal-client YAML (model/train/eval/client)")
    p.add_argument("--set", action="append", default=[], help="key=value override")
    p.add_argument("--server", default="", help="Flower server address (grpc-bidi)")
    p.add_argument("--export-initial", default="", help="write the global arrays and exit")
    p.add_argument("--standalone", type=int, default=0, help="train N epochs locally, print JSON")
    p.add_argument("--check-model", default="",
                   help="load a full model.npz written by petal-train (every parameter by name) "
                        "into this model, evaluate, print JSON, exit")
    p.add_argument("--check-initial", default="",
                   help="load petal-client's --export-initial .npz into this model (same count, "
                        "order and shapes of global arrays, else exit 1), print JSON, exit")
    args = p.parse_args()
    if not (args.server or args.export_initial or args.standalone or args.check_initial
            or args.check_model):
        p.error("one of --server, --export-initial, --standalone, --check-initial, --check-model "
                "is needed")
    s = settings(args.config, args.set)
    trainer = tag_ncf_torch.Trainer(tag_ncf_torch.ClientData(args.data), seed=s["seed"],
                                    threads=s["threads"], **s["trainer"])
    ready = time.perf_counter() - T_START
    if args.check_model:
        import torch
        state = trainer.model.state_dict()
        with np.load(args.check_model) as z:
            if sorted(z.files) != sorted(state):
                print(f"flower_client.py: parameter names differ: {sorted(z.files)} vs {sorted(state)}")
                sys.exit(1)
            with torch.no_grad():
                for name in z.files:
                    if tuple(state[name].shape) != z[name].shape:
                        print(f"flower_client.py: {name}: shape {z[name].shape} != "
                              f"{tuple(state[name].shape)}")
                        sys.exit(1)
                    state[name].copy_(torch.from_numpy(z[name]))
        print(json.dumps({"impl": "pytorch", "evaluate": trainer.evaluate(s["k"])}))
        return
    if args.check_initial:
        with np.load(args.check_initial) as z:
            arrays = [z[k] for k in z.files]
        try:
            trainer.set_global(arrays)
        except ValueError as e:
            print(f"flower_client.py: petal's global arrays do not fit the PyTorch model: {e}")
            sys.exit(1)
        print(json.dumps({"impl": "pytorch", "global_arrays": [
            [n, list(p.shape)] for n, p in trainer.model.global_named()]}))
        return
    if args.export_initial:
        np.savez(args.export_initial, *trainer.get_global())
        print(json.dumps({"impl": "pytorch", "startup_seconds": time.perf_counter() - T_START}))
        return
    if args.standalone:
        epochs = [trainer.train(1) for _ in range(args.standalone)]
        ev = trainer.evaluate(s["k"])
        print(json.dumps({"impl": "pytorch", "ready_seconds": ready, "epochs": epochs,
                          "evaluate": ev, "peak_rss_mib": peak_rss_mib()}))
        return

    class TorchNcfClient(flwr.client.NumPyClient):
        def get_parameters(self, config):
            return trainer.get_global()

        def fit(self, parameters, config):
            trainer.set_global(parameters)
            epochs = int(config.get("local_epochs", config.get("epochs", s["epochs"])))
            stats = trainer.train(epochs)
            stats["peak_rss_mib"] = peak_rss_mib()
            return trainer.get_global(), len(trainer.data.train_user), stats

        def evaluate(self, parameters, config):
            trainer.set_global(parameters)
            ev = trainer.evaluate(int(config.get("k", s["k"])))
            loss = ev.pop("loss")
            n = ev.pop("num_examples")
            return loss, n, ev

    flwr.client.start_client(server_address=args.server, client=TorchNcfClient().to_client())


if __name__ == "__main__":
    main()
