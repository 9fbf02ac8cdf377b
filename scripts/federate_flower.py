#!/usr/bin/env python3
"""A stock Python Flower server (flwr's legacy start_server) driven by petal-server's YAML.

  .venv/bin/python scripts/federate_flower.py --config configs/federation/demo/server.yaml \\
      [--set key=value ...]

It takes petal-server's command line (--config, --set, --port-file), so
scripts/federate --server flower and the `flower` profile of
docker/docker-compose.yml swap the server without touching anything else. It
reads the keys Flower has: server.address (port 0: a free port is chosen),
server.port_file (written once Flower's gRPC server runs),
server.max_message_length, run.num_rounds, run.round_timeout (0 = none),
run.initial_parameters (.npz or .npy files; Flower's FedOpt strategies need
them: export them with `petal-client --export-initial model.npz`),
run.send_server_round, fit_config, evaluate_config, strategy.* (Flower's own
strategy classes, same parameter names), output.dir. It writes
output.dir/history.json (Flower's History in petal-server's layout:
metrics_distributed, losses_distributed, metrics_distributed_fit, rounds) and
prints one `petal-progress {...}` line per round for the launcher. Keys with
no Flower equivalent (TLS files, checkpoints, keepalive, Petal's accumulation
modes) are reported and ignored; an unknown strategy is an error.
Exit status: 0 done, 2 bad config. Needs flwr (the venv of scripts/setup.sh).
"""
import argparse
import json
import logging
import os
import socket
import sys
import time

import numpy as np
import yaml

import flwr
from flwr.common import ndarrays_to_parameters
from flwr.server import ServerConfig, start_server
from flwr.server import strategy as fl_strategy

STRATEGIES = {
    "fedavg": (fl_strategy.FedAvg, ()),
    "fedprox": (fl_strategy.FedProx, ("proximal_mu",)),
    "fedadagrad": (fl_strategy.FedAdagrad, ("eta", "eta_l", "tau")),
    "fedadam": (fl_strategy.FedAdam, ("eta", "eta_l", "beta_1", "beta_2", "tau")),
    "fedyogi": (fl_strategy.FedYogi, ("eta", "eta_l", "beta_1", "beta_2", "tau")),
    "fedavgm": (fl_strategy.FedAvgM, ("server_learning_rate", "server_momentum")),
    "fedmedian": (fl_strategy.FedMedian, ()),
    "fedtrimmedavg": (fl_strategy.FedTrimmedAvg, ("beta",)),
    "krum": (fl_strategy.Krum, ("num_malicious_clients", "num_clients_to_keep")),
}
COMMON = ("fraction_fit", "fraction_evaluate", "min_fit_clients", "min_evaluate_clients",
          "min_available_clients", "accept_failures")
PETAL_ONLY = {"accumulation", "integer_arrays"}  # Flower has one arithmetic
NEEDS_INITIAL = {"fedadagrad", "fedadam", "fedyogi"}


class ConfigError(Exception):
    pass


def apply_override(doc, assignment):
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set '{assignment}': expected key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    node = doc
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = parsed


def section(doc, name):
    value = doc.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a map")
    return value


def weighted_average(pairs):
    """num_examples-weighted mean of every numeric metric (petal-server's weighted_average)."""
    total = sum(n for n, _ in pairs)
    if total <= 0:
        return {}
    sums = {}
    for n, metrics in pairs:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                sums[k] = sums.get(k, 0.0) + n * float(v)
    return {k: s / total for k, s in sums.items()}


def load_initial(paths):
    arrays = []
    for path in paths:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                arrays += [z[name] for name in z.files]
        else:
            arrays.append(np.load(path, allow_pickle=False))
    return ndarrays_to_parameters(arrays)


def free_port(host):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_strategy(cfg, rounds_log):
    strat = section(cfg, "strategy")
    name = strat.get("name", "fedavg")
    if name not in STRATEGIES:
        raise ConfigError(f"strategy.name '{name}' is not one of {', '.join(STRATEGIES)}")
    cls, own = STRATEGIES[name]
    kwargs = {}
    for key, value in strat.items():
        if key == "name":
            continue
        if key in COMMON or key in own:
            kwargs[key] = value
        elif key in PETAL_ONLY:
            print(f"federate_flower: strategy.{key} has no Flower equivalent: ignored", flush=True)
        elif key == "fit_metrics_aggregation" or key == "evaluate_metrics_aggregation":
            if value not in ("none", "weighted_average"):
                raise ConfigError(f"strategy.{key} must be none or weighted_average")
        else:
            raise ConfigError(f"strategy.{key} is not a parameter of Flower's {cls.__name__}")
    if strat.get("fit_metrics_aggregation", "weighted_average") == "weighted_average":
        kwargs["fit_metrics_aggregation_fn"] = weighted_average
    if strat.get("evaluate_metrics_aggregation", "weighted_average") == "weighted_average":
        kwargs["evaluate_metrics_aggregation_fn"] = weighted_average
    run = section(cfg, "run")
    send_round = run.get("send_server_round", True)
    fit_config = dict(section(cfg, "fit_config"))
    evaluate_config = dict(section(cfg, "evaluate_config"))

    def config_fn(base):
        def fn(server_round):
            c = dict(base)
            if send_round:
                c["server_round"] = server_round
            return c
        return fn

    kwargs["on_fit_config_fn"] = config_fn(fit_config)
    kwargs["on_evaluate_config_fn"] = config_fn(evaluate_config)
    initial = run.get("initial_parameters", "")
    if isinstance(initial, str):
        initial = [initial] if initial else []
    if initial:
        kwargs["initial_parameters"] = load_initial(initial)
    elif name in NEEDS_INITIAL:
        raise ConfigError(f"Flower's {cls.__name__} needs run.initial_parameters (export them with "
                          f"petal-client --export-initial model.npz)")

    class Reporting(cls):
        """The Flower strategy, plus a record and a progress line per round."""

        def configure_fit(self, server_round, parameters, client_manager):
            rounds_log.setdefault(server_round, {"round": server_round})["fit_start"] = time.monotonic()
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            r = rounds_log.setdefault(server_round, {"round": server_round})
            r["fit"] = {"sampled": len(results) + len(failures), "results": len(results),
                        "failures": len(failures), "model_updated": out[0] is not None,
                        "seconds": time.monotonic() - r.pop("fit_start", time.monotonic()),
                        "metrics": out[1]}
            if self.fraction_evaluate == 0:
                print("petal-progress " + json.dumps(r), flush=True)
            return out

        def configure_evaluate(self, server_round, parameters, client_manager):
            rounds_log.setdefault(server_round, {"round": server_round})["eval_start"] = time.monotonic()
            return super().configure_evaluate(server_round, parameters, client_manager)

        def aggregate_evaluate(self, server_round, results, failures):
            loss, metrics = super().aggregate_evaluate(server_round, results, failures)
            r = rounds_log.setdefault(server_round, {"round": server_round})
            r["evaluate"] = {"sampled": len(results) + len(failures), "results": len(results),
                             "failures": len(failures), "loss": loss, "metrics": metrics,
                             "seconds": time.monotonic() - r.pop("eval_start", time.monotonic())}
            print("petal-progress " + json.dumps(r), flush=True)
            return loss, metrics

    return Reporting(**kwargs), name


class PortFileWriter(logging.Handler):
    """Writes the port file when Flower logs that its gRPC server runs."""

    def __init__(self, path, port):
        super().__init__()
        self.path, self.port, self.done = path, port, False

    def emit(self, record):
        if self.done or "gRPC server running" not in record.getMessage():
            return
        self.done = True
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{self.port}\n")
        os.replace(tmp, self.path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="petal-server YAML")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--port-file", help="write the bound port here (overrides server.port_file)")
    args = parser.parse_args(argv)
    rounds_log = {}
    try:
        cfg = {}
        if args.config:
            try:
                with open(args.config, encoding="utf-8") as f:
                    cfg = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ConfigError(f"{args.config}: {e}") from None
        for s in args.set:
            apply_override(cfg, s)
        server = section(cfg, "server")
        run = section(cfg, "run")
        output = section(cfg, "output")
        for ignored in ("tls", "max_concurrent_streams", "max_clients", "max_buffered_reply_bytes",
                        "keepalive_time"):
            if ignored in server:
                print(f"federate_flower: server.{ignored} has no start_server equivalent: ignored",
                      flush=True)
        address = str(server.get("address", "127.0.0.1:8080"))
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"server.address '{address}' must be host:port")
        port = int(port) or free_port(host.strip("[]"))
        rounds = int(run.get("num_rounds", 1))
        timeout = float(run.get("round_timeout", 0) or 0) or None
        strategy, name = make_strategy(cfg, rounds_log)
    except (ConfigError, ValueError, TypeError) as e:
        print(f"federate_flower: {e}", file=sys.stderr)
        return 2
    port_file = args.port_file or server.get("port_file", "")
    if port_file:
        logging.getLogger("flwr").addHandler(PortFileWriter(port_file, port))
    print(f"federate_flower: flwr {flwr.__version__} start_server on {host}:{port}, strategy "
          f"{type(strategy).__mro__[1].__name__}, {rounds} rounds", flush=True)
    history = start_server(server_address=f"{host}:{port}",
                           config=ServerConfig(num_rounds=rounds, round_timeout=timeout),
                           strategy=strategy,
                           grpc_max_message_length=int(server.get("max_message_length", 536870912)))
    out_dir = output.get("dir", "")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        doc = {"completed": len(rounds_log) >= rounds, "last_round": max(rounds_log, default=0),
               "strategy": name, "server": f"flwr {flwr.__version__} start_server",
               "losses_distributed": history.losses_distributed,
               "losses_centralized": history.losses_centralized,
               "metrics_distributed": history.metrics_distributed,
               "metrics_distributed_fit": history.metrics_distributed_fit,
               "metrics_centralized": history.metrics_centralized,
               "rounds": [rounds_log[r] for r in sorted(rounds_log)]}
        with open(os.path.join(out_dir, "history.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, default=float)
    print(f"federate_flower: finished {len(rounds_log)} rounds", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
