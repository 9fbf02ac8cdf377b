"""Golden tests: Petal's strategies against Flower's own (legacy) strategy classes.

Run by ctest as: python strategy_golden_interop.py PATH/TO/petal_strategy_tool

For each case the test drives a real flwr.server.strategy class (FedAvg,
FedProx, FedAdagrad, FedAdam, FedYogi, FedAvgM, FedMedian, FedTrimmedAvg, Krum)
for several rounds on seeded random client results that move around Flower's
own global model, feeds the very same results to Petal (petal_strategy_tool),
and compares every round's aggregated model, fit metrics and evaluation loss.

Comparison modes (docs/server.md, "Numerics"):
- exact: element-wise |petal - flower| <= 1e-6 * |flower| (in practice
  bit-identical). Used wherever Flower's operation order is deterministic and
  reproducible while streaming: all strategies in float64; in float32/float16
  Petal's accumulation=native against Flower's non-inplace aggregate().
- rounding: Petal's default float64 accumulation against Flower's default
  in-place FedAvg on float32: Flower rounds every partial sum in float32, so the
  two may differ by Flower's own rounding error. Checked against that bound, and
  Petal is checked to be the correctly rounded weighted mean.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import flwr
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import strategy as fl_strategy

TOOL = None
SHAPES = [(6, 5), (11,), (), (2, 3, 2)]
# Flower's non-inplace arithmetic keeps a float32/float16 array's dtype only for
# arrays with ndim >= 1 (NumPy treats 0-d arrays as scalars and computes them in
# float64) and small counts (float16 * n becomes float32 for n > 255, float32
# becomes float64 for n > 65535). The native-mode exactness cases stay in that
# regime; test_flower_dtype_drift covers the rest.
NATIVE_SHAPES = [(6, 5), (11,), (2, 3, 2)]


def weighted_metrics(metrics):
    """Flower-style *_metrics_aggregation_fn: num_examples-weighted mean of numeric metrics."""
    sums, weights = {}, {}
    for n, m in metrics:
        for k, v in m.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            sums[k] = sums.get(k, 0.0) + n * float(v)
            weights[k] = weights.get(k, 0.0) + n
    return {k: sums[k] / weights[k] for k in sums}


class Case:
    def __init__(self, name, cls, dtype="float64", flower_kwargs=None, petal_params=None,
                 clients=(3, 4, 5), mode="exact", flower_inplace=None, initial=True,
                 failures=None, spread=0.1, dtypes=None, independent=False, shapes=None,
                 max_examples=200):
        self.name = name
        self.cls = cls
        self.shapes = shapes or SHAPES
        self.dtypes = dtypes or [dtype] * len(self.shapes)
        self.max_examples = max_examples
        self.flower_kwargs = flower_kwargs or {}
        self.petal_params = petal_params or {}
        self.clients = clients
        self.mode = mode
        self.flower_inplace = flower_inplace
        self.initial = initial
        self.failures = failures or [0] * len(clients)
        self.spread = spread
        self.independent = independent


def registry_name(cls):
    return {
        fl_strategy.FedAvg: "fedavg",
        fl_strategy.FedProx: "fedprox",
        fl_strategy.FedAdagrad: "fedadagrad",
        fl_strategy.FedAdam: "fedadam",
        fl_strategy.FedYogi: "fedyogi",
        fl_strategy.FedAvgM: "fedavgm",
        fl_strategy.FedMedian: "fedmedian",
        fl_strategy.FedTrimmedAvg: "fedtrimmedavg",
        fl_strategy.Krum: "krum",
    }[cls]


def make_arrays(rng, shapes, dtypes, around=None, spread=1.0):
    out = []
    for i, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        if np.dtype(dtype).kind in "iub":
            base = rng.integers(-50, 50, size=shape) if around is None else around[i]
            out.append(np.asarray(base + rng.integers(-3, 4, size=shape)).astype(dtype))
        else:
            noise = rng.standard_normal(shape)
            base = 0.0 if around is None else around[i].astype(np.float64)
            out.append(np.asarray(base + spread * noise).astype(dtype))
    return out


class StrategyGolden(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    # --- drivers ------------------------------------------------------------
    def run_case(self, case, seed=7, restart_after=None):
        """Runs Flower round by round, recording inputs; then Petal on the same inputs."""
        rng = np.random.default_rng(seed)
        d = tempfile.mkdtemp(dir=self.tmp.name)
        x0 = make_arrays(rng, case.shapes, case.dtypes)
        kwargs = dict(case.flower_kwargs)
        kwargs.setdefault("fit_metrics_aggregation_fn", weighted_metrics)
        kwargs.setdefault("evaluate_metrics_aggregation_fn", weighted_metrics)
        if case.initial:
            kwargs["initial_parameters"] = ndarrays_to_parameters(x0)
        flower = case.cls(**kwargs)
        if case.flower_inplace is not None:
            flower.inplace = case.flower_inplace
        scenario = {"strategy": registry_name(case.cls), "params": case.petal_params, "rounds": []}
        if case.initial:
            np.savez(os.path.join(d, "initial.npz"), *x0)
            scenario["initial"] = "initial.npz"
        if restart_after is not None:
            scenario["restart_after_round"] = restart_after

        global_x = x0
        expected = []
        for r, k in enumerate(case.clients, start=1):
            results, spec = [], []
            for c in range(k):
                arrs = make_arrays(rng, case.shapes, case.dtypes,
                                   None if case.independent else global_x,
                                   spread=case.spread * (c + 1))
                n = int(rng.integers(1, case.max_examples))
                metrics = {"acc": float(rng.random()), "seen": int(rng.integers(0, 1000))}
                name = f"r{r}c{c}.npz"
                np.savez(os.path.join(d, name), *arrs)
                spec.append({"npz": name, "num_examples": n, "metrics": metrics})
                results.append((None, FitRes(Status(Code.OK, "Success"),
                                             ndarrays_to_parameters(arrs), n, metrics)))
            failures = [RuntimeError("injected")] * case.failures[r - 1]
            params, fit_metrics = flower.aggregate_fit(r, results, failures)
            evals = []
            eval_spec = []
            for c in range(k):
                loss = float(np.float32(rng.random() * 3))
                n = int(rng.integers(1, 100))
                m = {"hr10": float(rng.random())}
                evals.append((None, EvaluateRes(Status(Code.OK, "Success"), loss, n, m)))
                eval_spec.append({"loss": loss, "num_examples": n, "metrics": m})
            loss, eval_metrics = flower.aggregate_evaluate(r, evals, failures)
            scenario["rounds"].append({"results": spec, "failures": case.failures[r - 1],
                                       "evaluate": eval_spec})
            arrays = parameters_to_ndarrays(params) if params is not None else None
            expected.append({"arrays": arrays, "fit_metrics": fit_metrics, "loss": loss,
                             "evaluate_metrics": eval_metrics, "inputs": results})
            if arrays is not None:
                global_x = arrays

        path = os.path.join(d, "scenario.json")
        with open(path, "w") as f:
            json.dump(scenario, f)
        out = os.path.join(d, "out")
        os.makedirs(out)
        proc = subprocess.run([TOOL, "run", path, out], capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        report = json.loads(proc.stdout)
        got = []
        for r, entry in enumerate(report["rounds"], start=1):
            arrays = None
            if entry["parameters"]:
                with np.load(os.path.join(out, f"round_{r}.npz")) as z:
                    arrays = [z[f"arr_{i}"] for i in range(len(z.files))]
            got.append({"arrays": arrays, "fit_metrics": entry["fit_metrics"],
                        "loss": entry["loss"], "evaluate_metrics": entry["evaluate_metrics"]})
        return expected, got

    def check(self, case, expected, got):
        self.assertEqual(len(expected), len(got))
        for r, (e, g) in enumerate(zip(expected, got), start=1):
            ctx = f"{case.name} round {r}"
            if e["arrays"] is None:
                self.assertIsNone(g["arrays"], ctx)
                continue
            self.assertIsNotNone(g["arrays"], ctx)
            self.assertEqual(len(e["arrays"]), len(g["arrays"]), ctx)
            for i, (fa, pa) in enumerate(zip(e["arrays"], g["arrays"])):
                actx = f"{ctx} array {i}"
                self.assertEqual(fa.shape, pa.shape, actx)
                if case.mode == "exact":
                    self.assertEqual(fa.dtype, pa.dtype, actx)
                    np.testing.assert_allclose(pa.astype(np.float64), fa.astype(np.float64),
                                               rtol=1e-6, atol=0, err_msg=actx)
                elif case.mode == "rounding":
                    self.check_rounding(e["inputs"], i, fa, pa, actx)
            for key, value in e["fit_metrics"].items():
                self.assertAlmostEqual(g["fit_metrics"][key], value, delta=1e-12 * abs(value), msg=ctx)
            self.assertEqual(set(e["fit_metrics"]), set(g["fit_metrics"]), ctx)
            if e["loss"] is None:
                self.assertIsNone(g["loss"], ctx)
            else:
                self.assertAlmostEqual(g["loss"], e["loss"], delta=1e-12 * abs(e["loss"]), msg=ctx)
            for key, value in e["evaluate_metrics"].items():
                self.assertAlmostEqual(g["evaluate_metrics"][key], value, delta=1e-12 * abs(value),
                                       msg=ctx)

    def check_rounding(self, inputs, index, flower, petal, ctx):
        """Petal = correctly rounded weighted mean; Flower within its own rounding error."""
        self.assertEqual(flower.dtype, petal.dtype, ctx)
        ws = [parameters_to_ndarrays(res.parameters)[index].astype(np.float64) for _, res in inputs]
        ns = np.array([res.num_examples for _, res in inputs], dtype=np.float64)
        exact = sum(n * w for n, w in zip(ns, ws)) / ns.sum()
        scale = sum((n / ns.sum()) * np.abs(w) for n, w in zip(ns, ws))
        eps = np.finfo(petal.dtype).eps
        # Petal rounds once: within half an ulp of the exact mean (plus float64 noise).
        ulp = np.spacing(np.abs(exact).astype(petal.dtype)).astype(np.float64)
        self.assertTrue(np.all(np.abs(petal.astype(np.float64) - exact) <= 0.5 * ulp + 1e-12 * scale),
                        ctx)
        # Flower's in-place float32 sum: K multiplications and K-1 additions, each
        # rounding by at most eps/2 relative to the running magnitude (<= scale).
        bound = len(inputs) * eps * scale + ulp
        diff = np.abs(petal.astype(np.float64) - flower.astype(np.float64))
        self.assertTrue(np.all(diff <= bound), f"{ctx}: max diff {diff.max()} bound {bound.max()}")
        # Norm-wise the two agree to 1e-6 relative.
        self.assertLessEqual(diff.max(), 1e-6 * max(np.abs(flower).max(), 1e-30), ctx)

    def run_and_check(self, case, seed=7):
        expected, got = self.run_case(case, seed=seed)
        self.check(case, expected, got)
        return expected, got

    # --- float64: every strategy with its defaults ----------------------------
    def test_fedavg_float64_defaults(self):
        self.run_and_check(Case("fedavg-f64", fl_strategy.FedAvg))

    def test_fedavg_float64_independent_results(self):
        self.run_and_check(Case("fedavg-f64-indep", fl_strategy.FedAvg, independent=True,
                                clients=(2, 7, 3, 10)))

    def test_fedprox_float64(self):
        self.run_and_check(Case("fedprox-f64", fl_strategy.FedProx,
                                flower_kwargs={"proximal_mu": 0.1},
                                petal_params={"proximal_mu": 0.1}))

    def test_fedadagrad_float64(self):
        self.run_and_check(Case("fedadagrad-f64", fl_strategy.FedAdagrad, clients=(3, 4, 5, 3)))

    def test_fedadam_float64(self):
        self.run_and_check(Case("fedadam-f64", fl_strategy.FedAdam, clients=(3, 4, 5, 3, 2)))

    def test_fedadam_float64_custom_hyperparameters(self):
        kw = {"eta": 0.03, "beta_1": 0.5, "beta_2": 0.9, "tau": 1e-4}
        self.run_and_check(Case("fedadam-f64-custom", fl_strategy.FedAdam, flower_kwargs=kw,
                                petal_params=kw))

    def test_fedyogi_float64(self):
        self.run_and_check(Case("fedyogi-f64", fl_strategy.FedYogi, clients=(3, 4, 5, 3)))

    def test_fedavgm_float64_momentum(self):
        kw = {"server_learning_rate": 1.0, "server_momentum": 0.9}
        self.run_and_check(Case("fedavgm-f64", fl_strategy.FedAvgM, flower_kwargs=kw,
                                petal_params=kw, clients=(3, 4, 5, 2)))

    def test_fedavgm_float64_learning_rate_only(self):
        kw = {"server_learning_rate": 0.5, "server_momentum": 0.0}
        self.run_and_check(Case("fedavgm-f64-lr", fl_strategy.FedAvgM, flower_kwargs=kw,
                                petal_params=kw))

    def test_fedavgm_float64_plain(self):
        self.run_and_check(Case("fedavgm-f64-plain", fl_strategy.FedAvgM))

    def test_fedmedian_float64_odd_and_even(self):
        self.run_and_check(Case("fedmedian-f64", fl_strategy.FedMedian, clients=(3, 4, 5, 6)))

    def test_fedtrimmedavg_float64(self):
        self.run_and_check(Case("fedtrimmedavg-f64", fl_strategy.FedTrimmedAvg,
                                clients=(5, 8, 10)))
        kw = {"beta": 0.25}
        self.run_and_check(Case("fedtrimmedavg-f64-b25", fl_strategy.FedTrimmedAvg,
                                flower_kwargs=kw, petal_params=kw, clients=(4, 8, 9)))

    def test_krum_float64(self):
        kw = {"num_malicious_clients": 1}
        self.run_and_check(Case("krum-f64", fl_strategy.Krum, flower_kwargs=kw, petal_params=kw,
                                clients=(5, 6, 7), independent=True))

    def test_multikrum_float64(self):
        kw = {"num_malicious_clients": 1, "num_clients_to_keep": 3}
        self.run_and_check(Case("multikrum-f64", fl_strategy.Krum, flower_kwargs=kw,
                                petal_params=kw, clients=(5, 6, 7), independent=True))

    # --- failures -----------------------------------------------------------
    def test_failures_accepted_and_refused(self):
        self.run_and_check(Case("fedavg-failures-ok", fl_strategy.FedAvg, failures=(1, 0, 2)))
        kw = {"accept_failures": False}
        self.run_and_check(Case("fedavg-failures-refused", fl_strategy.FedAvg, flower_kwargs=kw,
                                petal_params=kw, failures=(0, 1, 0)))
        self.run_and_check(Case("fedadam-failures-refused", fl_strategy.FedAdam, flower_kwargs=kw,
                                petal_params=kw, failures=(0, 1, 0, 0), clients=(3, 3, 3, 3)))

    # --- float32 / float16: accumulation=native vs Flower's non-inplace path -------
    def native_case(self, name, cls, dtype="float32", **kw):
        params = dict(kw.pop("petal_params", {}))
        params["accumulation"] = "native"
        kw.setdefault("shapes", NATIVE_SHAPES)
        if dtype == "float16":
            kw.setdefault("max_examples", 40)  # keeps every count and total <= 255
        return Case(name, cls, dtype=dtype, petal_params=params, flower_inplace=False, **kw)

    def test_native_float32_fedavg_fedprox(self):
        self.run_and_check(self.native_case("fedavg-f32-native", fl_strategy.FedAvg))
        self.run_and_check(self.native_case("fedavg-f32-native-indep", fl_strategy.FedAvg,
                                            independent=True, clients=(2, 9, 4)))
        self.run_and_check(self.native_case("fedprox-f32-native", fl_strategy.FedProx,
                                            flower_kwargs={"proximal_mu": 1.0},
                                            petal_params={"proximal_mu": 1.0}))

    def test_native_float32_fedopt_family(self):
        for cls in (fl_strategy.FedAdagrad, fl_strategy.FedAdam, fl_strategy.FedYogi):
            with self.subTest(cls.__name__):
                self.run_and_check(self.native_case(f"{cls.__name__}-f32-native", cls,
                                                    clients=(3, 4, 5, 3, 4)))

    def test_native_float32_fedavgm(self):
        kw = {"server_learning_rate": 0.7, "server_momentum": 0.9}
        self.run_and_check(self.native_case("fedavgm-f32-native", fl_strategy.FedAvgM,
                                            flower_kwargs=kw, petal_params=kw,
                                            clients=(3, 4, 5, 3)))

    def test_native_float32_median_and_multikrum(self):
        self.run_and_check(self.native_case("fedmedian-f32", fl_strategy.FedMedian,
                                            clients=(4, 5, 6)))
        kw = {"num_malicious_clients": 1, "num_clients_to_keep": 2}
        self.run_and_check(self.native_case("multikrum-f32", fl_strategy.Krum, flower_kwargs=kw,
                                            petal_params=kw, clients=(5, 6), independent=True))

    def test_native_float16_fedavg_and_fedadam(self):
        self.run_and_check(self.native_case("fedavg-f16-native", fl_strategy.FedAvg,
                                            dtype="float16"))
        self.run_and_check(self.native_case("fedadam-f16-native", fl_strategy.FedAdam,
                                            dtype="float16", clients=(3, 4, 3)))
        self.run_and_check(self.native_case("fedmedian-f16", fl_strategy.FedMedian,
                                            dtype="float16", clients=(4, 3)))

    # --- float32 defaults: Flower's in-place float32 FedAvg -------------------------
    def test_default_float32_fedavg_within_flower_rounding(self):
        for clients in [(2, 3, 5), (10, 20)]:
            case = Case(f"fedavg-f32-default-{clients}", fl_strategy.FedAvg, dtype="float32",
                        mode="rounding", independent=True, clients=clients)
            self.run_and_check(case)

    def test_flower_dtype_drift(self):
        """Where NumPy widens Flower's result (0-d float32 arrays -> float64, float16 with
        totals > 255 -> float32, float32 with totals > 65535 -> float64), Petal computes in
        the same widened dtype and stores the result in the model's own dtype."""
        cases = [
            Case("drift-0d-f32", fl_strategy.FedAvg, shapes=[(), (3,)], dtype="float32",
                 petal_params={"accumulation": "native"}, flower_inplace=False, mode="none",
                 independent=True),
            Case("drift-f16", fl_strategy.FedAvg, shapes=[(5,), (2, 2)], dtype="float16",
                 petal_params={"accumulation": "native"}, flower_inplace=False, mode="none",
                 independent=True, max_examples=3000),
            Case("drift-f32-large", fl_strategy.FedAvg, shapes=[(7,)], dtype="float32",
                 petal_params={"accumulation": "native"}, flower_inplace=False, mode="none",
                 independent=True, max_examples=100000, clients=(2, 3, 4)),
        ]
        drifted = 0
        for case in cases:
            expected, got = self.run_case(case)
            for r, (e, g) in enumerate(zip(expected, got), start=1):
                for i, (fa, pa) in enumerate(zip(e["arrays"], g["arrays"])):
                    ctx = f"{case.name} round {r} array {i}"
                    self.assertEqual(pa.dtype, np.dtype(case.dtypes[i]), ctx)
                    drifted += fa.dtype != pa.dtype
                    np.testing.assert_array_equal(pa, fa.astype(pa.dtype), ctx)
        self.assertGreater(drifted, 0, "the cases must exercise Flower's dtype drift")

    # --- integer arrays -----------------------------------------------------------
    def test_integer_arrays_are_averaged_not_zeroed(self):
        dtypes = ["float32", "int64", "float64"]
        case = Case("fedavg-int-native", fl_strategy.FedAvg, dtypes=dtypes, shapes=NATIVE_SHAPES,
                    petal_params={"accumulation": "native"}, flower_inplace=False, mode="none")
        expected, got = self.run_case(case)
        for r, (e, g) in enumerate(zip(expected, got), start=1):
            for i, (fa, pa) in enumerate(zip(e["arrays"], g["arrays"])):
                ctx = f"round {r} array {i}"
                self.assertEqual(pa.dtype, np.dtype(dtypes[i]), ctx)
                if np.dtype(dtypes[i]).kind == "i":
                    # Flower's non-inplace path returns the float64 mean; Petal keeps
                    # the dtype and rounds half to even (np.round).
                    self.assertEqual(fa.dtype, np.float64, ctx)
                    np.testing.assert_array_equal(pa, np.round(fa).astype(pa.dtype), ctx)
                else:
                    np.testing.assert_allclose(pa, fa, rtol=1e-6, atol=0, err_msg=ctx)
        # Flower's default in-place path really zeroes integer arrays (the pitfall
        # Petal does not reproduce): flower-wire.md B.1.
        a = ndarrays_to_parameters([np.array([1, 2])])
        b = ndarrays_to_parameters([np.array([3, 5])])
        out, _ = fl_strategy.FedAvg().aggregate_fit(
            1, [(None, FitRes(Status(Code.OK, ""), a, 1, {})),
                (None, FitRes(Status(Code.OK, ""), b, 3, {}))], [])
        np.testing.assert_array_equal(parameters_to_ndarrays(out)[0], [0, 0])

    # --- checkpoint state ----------------------------------------------------------
    def test_restart_with_saved_state_matches_uninterrupted(self):
        for cls, kw in [(fl_strategy.FedAdam, {}), (fl_strategy.FedYogi, {}),
                        (fl_strategy.FedAvgM, {"server_momentum": 0.9})]:
            with self.subTest(cls.__name__):
                case = Case(f"{cls.__name__}-restart", cls, flower_kwargs=kw, petal_params=kw,
                            clients=(3, 3, 3, 3))
                expected, got = self.run_case(case, restart_after=2)
                self.check(case, expected, got)


if __name__ == "__main__":
    TOOL = sys.argv.pop(1)
    print(f"flwr {flwr.__version__}, numpy {np.__version__}", file=sys.stderr)
    unittest.main()
