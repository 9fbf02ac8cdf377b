"""Petal's wire contract against Flower's own Python protobuf classes and serde.

Run by ctest as: python proto_flwr_interop.py PATH/TO/petal_proto_tool

- The compiled descriptors agree: package, every message, field name, number,
  type, label, oneof and enum value, and the FlowerService/Join method.
- Messages built and serialized by Flower (flwr.common.serde) parse in Petal
  with no unknown fields and decode, through Petal's serde, to the same typed
  values (config/metrics typing, npy tensors).
- Messages built by Petal's serde parse in Flower and decode with Flower's
  serde to the same values.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from google.protobuf import descriptor_pb2
from google.protobuf.json_format import MessageToDict, MessageToJson

import flwr
from flwr.common import (
    Code,
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    ReconnectIns,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common import serde
from flwr.proto import transport_pb2

TOOL = None

CONFIG = {
    "lr": 0.01,
    "local_epochs": 3,
    "neg": -7,
    "flag": True,
    "off": False,
    "name": "tag-ncf é",
    "blob": b"\x00\x01\xff",
    "big": 2**63 + 5,
    "zero": 0,
}
PY_TYPE_TO_PETAL = {bool: "bool", bytes: "bytes", float: "double", str: "string"}


def petal_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "uint64" if value > 2**63 - 1 else "sint64"
    return PY_TYPE_TO_PETAL[type(value)]


def arrays():
    rng = np.random.default_rng(7)
    return [
        rng.standard_normal((3, 4)).astype(np.float32),
        rng.standard_normal((5,)).astype(np.float64),
        np.array(2.5, dtype=np.float16),
        rng.integers(-100, 100, size=(2, 2, 2), dtype=np.int32),
        rng.integers(-(2**40), 2**40, size=(6,), dtype=np.int64),
        rng.integers(0, 255, size=(4,), dtype=np.uint8),
        np.array([True, False, True]),
        np.zeros((0, 3), dtype=np.float32),
    ]


def c_le_hex(a):
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes().hex()


def scalar_spec(value):
    t = petal_type(value)
    return {"type": t, "value": value.hex() if t == "bytes" else value}


def tensors_spec(arrs):
    return [{"dtype": a.dtype.name, "shape": list(a.shape), "hex": c_le_hex(a)} for a in arrs]


def fields_of(desc_proto):
    """A comparable summary of a DescriptorProto (nested types included)."""
    out = {}
    for f in desc_proto.field:
        oneof = desc_proto.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        out[f.name] = (f.number, f.type, f.label, f.type_name, oneof)
    nested = {n.name: fields_of(n) for n in desc_proto.nested_type}
    opts = bool(desc_proto.options.map_entry)
    return {"fields": out, "nested": nested, "map_entry": opts}


def file_summary(fdp):
    return {
        "name": fdp.name,
        "package": fdp.package,
        "syntax": fdp.syntax,
        "messages": {m.name: fields_of(m) for m in fdp.message_type},
        "enums": {e.name: [(v.name, v.number) for v in e.value] for e in fdp.enum_type},
        "services": {
            s.name: [(m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                     for m in s.method]
            for s in fdp.service
        },
    }


class ProtoInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def tool(self, *args, expect_ok=True):
        proc = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=120)
        if expect_ok:
            self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def petal_inspect(self, type_name, message):
        src = self.path("msg.bin")
        with open(src, "wb") as f:
            f.write(message.SerializeToString())
        return json.loads(self.tool("inspect", type_name, src).stdout)

    def petal_build(self, type_name, spec, proto_cls):
        src, out = self.path("spec.json"), self.path("built.bin")
        with open(src, "w") as f:
            json.dump(spec, f)
        self.tool("build", type_name, src, out)
        with open(out, "rb") as f:
            msg = proto_cls()
            msg.ParseFromString(f.read())
        return msg

    # --- structure ---------------------------------------------------------
    def test_descriptor_matches_flower(self):
        out = self.path("desc.bin")
        self.tool("descriptor", out)
        ours = descriptor_pb2.FileDescriptorProto()
        with open(out, "rb") as f:
            ours.ParseFromString(f.read())
        theirs = descriptor_pb2.FileDescriptorProto()
        transport_pb2.DESCRIPTOR.CopyToProto(theirs)
        self.assertEqual(file_summary(ours), file_summary(theirs))
        self.assertEqual(ours.package, "flwr.proto")
        self.assertEqual(ours.service[0].name, "FlowerService")
        self.assertEqual(ours.service[0].method[0].name, "Join")

    # --- Flower -> Petal ---------------------------------------------------
    def check_config(self, petal_json, config):
        self.assertEqual(set(petal_json), set(config))
        for key, value in config.items():
            entry = petal_json[key]
            self.assertEqual(entry["type"], petal_type(value), key)
            expected = value.hex() if isinstance(value, bytes) else value
            self.assertEqual(entry["value"], expected, key)

    def check_tensors(self, petal_json, arrs):
        self.assertEqual(petal_json["tensor_type"], "numpy.ndarray")
        self.assertEqual(len(petal_json["tensors"]), len(arrs))
        for got, a in zip(petal_json["tensors"], arrs):
            self.assertEqual(got["dtype"], a.dtype.name)
            self.assertEqual(tuple(got["shape"]), a.shape)
            self.assertEqual(got["hex"], c_le_hex(a))

    def test_flower_server_messages_decode_in_petal(self):
        arrs = arrays()
        params = ndarrays_to_parameters(arrs)
        cases = [
            transport_pb2.ServerMessage(fit_ins=serde.fit_ins_to_proto(FitIns(params, CONFIG))),
            transport_pb2.ServerMessage(
                evaluate_ins=serde.evaluate_ins_to_proto(EvaluateIns(params, CONFIG))),
            transport_pb2.ServerMessage(
                get_parameters_ins=serde.get_parameters_ins_to_proto(GetParametersIns(CONFIG))),
            transport_pb2.ServerMessage(
                get_properties_ins=serde.get_properties_ins_to_proto(GetPropertiesIns(CONFIG))),
        ]
        for msg in cases:
            kind = msg.WhichOneof("msg")
            with self.subTest(kind=kind):
                got = self.petal_inspect("ServerMessage", msg)
                self.assertEqual(got["kind"], kind)
                self.check_config(got["config"], CONFIG)
                if kind in ("fit_ins", "evaluate_ins"):
                    self.check_tensors(got["parameters"], arrs)
        for seconds in (None, 0, 5):
            msg = transport_pb2.ServerMessage(
                reconnect_ins=serde.reconnect_ins_to_proto(ReconnectIns(seconds=seconds)))
            got = self.petal_inspect("ServerMessage", msg)
            self.assertEqual(got, {"kind": "reconnect_ins", "seconds": seconds or 0})

    def test_flower_client_messages_decode_in_petal(self):
        arrs = arrays()
        params = ndarrays_to_parameters(arrs)
        ok = Status(code=Code.OK, message="Success")
        fit = transport_pb2.ClientMessage(
            fit_res=serde.fit_res_to_proto(FitRes(ok, params, 1234, CONFIG)))
        got = self.petal_inspect("ClientMessage", fit)
        self.assertEqual(got["kind"], "fit_res")
        self.assertEqual(got["status"], {"code": 0, "message": "Success"})
        self.assertEqual(got["num_examples"], 1234)
        self.check_config(got["metrics"], CONFIG)
        self.check_tensors(got["parameters"], arrs)

        ev = transport_pb2.ClientMessage(
            evaluate_res=serde.evaluate_res_to_proto(EvaluateRes(ok, 0.1234567, 50, {"hr@10": 0.5})))
        got = self.petal_inspect("ClientMessage", ev)
        self.assertEqual(got["kind"], "evaluate_res")
        self.assertEqual(np.float32(got["loss"]), np.float32(0.1234567))  # float on the wire
        self.assertEqual(got["num_examples"], 50)
        self.check_config(got["metrics"], {"hr@10": 0.5})

        gp = transport_pb2.ClientMessage(get_parameters_res=serde.get_parameters_res_to_proto(
            GetParametersRes(Status(Code.GET_PARAMETERS_NOT_IMPLEMENTED, "no"), params)))
        got = self.petal_inspect("ClientMessage", gp)
        self.assertEqual(got["status"], {"code": 2, "message": "no"})
        # Flower sends only the status for *_NOT_IMPLEMENTED replies.
        self.assertEqual(got["parameters"], {"tensor_type": "", "tensors": []})
        gp = transport_pb2.ClientMessage(get_parameters_res=serde.get_parameters_res_to_proto(
            GetParametersRes(ok, params)))
        got = self.petal_inspect("ClientMessage", gp)
        self.assertEqual(got["status"], {"code": 0, "message": "Success"})
        self.check_tensors(got["parameters"], arrs)

        props = transport_pb2.ClientMessage(get_properties_res=serde.get_properties_res_to_proto(
            GetPropertiesRes(ok, CONFIG)))
        got = self.petal_inspect("ClientMessage", props)
        self.check_config(got["properties"], CONFIG)

        for reason in (0, 1, 2, 3, 4):
            msg = transport_pb2.ClientMessage(
                disconnect_res=transport_pb2.ClientMessage.DisconnectRes(reason=reason))
            self.assertEqual(self.petal_inspect("ClientMessage", msg),
                             {"kind": "disconnect_res", "reason": reason})

    def test_raw_json_views_agree(self):
        params = ndarrays_to_parameters(arrays())
        msgs = [
            ("ServerMessage", transport_pb2.ServerMessage(
                fit_ins=serde.fit_ins_to_proto(FitIns(params, CONFIG)))),
            ("ClientMessage", transport_pb2.ClientMessage(evaluate_res=serde.evaluate_res_to_proto(
                EvaluateRes(Status(Code.OK, "Success"), 0.5, 3, CONFIG)))),
            ("Scalar", transport_pb2.Scalar(uint64=2**64 - 1)),
            ("Scalar", transport_pb2.Scalar(sint64=-(2**63))),
            ("Status", transport_pb2.Status(code=4, message="x")),
        ]
        for type_name, msg in msgs:
            with self.subTest(type=type_name):
                src = self.path("raw.bin")
                with open(src, "wb") as f:
                    f.write(msg.SerializeToString())
                ours = json.loads(self.tool("tojson", type_name, src).stdout)
                self.assertEqual(ours, MessageToDict(msg, preserving_proto_field_name=True))
                # And back: Flower's JSON -> Petal binary -> Flower message.
                js, out = self.path("m.json"), self.path("m.bin")
                with open(js, "w") as f:
                    f.write(MessageToJson(msg))
                self.tool("fromjson", type_name, js, out)
                back = type(msg)()
                with open(out, "rb") as f:
                    back.ParseFromString(f.read())
                self.assertEqual(back, msg)

    def test_unknown_fields_are_detected(self):
        # The checks above rely on Petal refusing fields it does not know.
        msg = transport_pb2.Scalar(double=1.0).SerializeToString() + bytes([0x98, 0x06, 0x01])
        src = self.path("unknown.bin")
        with open(src, "wb") as f:
            f.write(msg)
        proc = self.tool("tojson", "Scalar", src, expect_ok=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown fields", proc.stderr)

    # --- Petal -> Flower ---------------------------------------------------
    def test_petal_client_messages_decode_in_flower(self):
        arrs = arrays()
        metrics = dict(CONFIG)
        spec = {"kind": "fit_res", "status": {"code": 0, "message": "Success"},
                "tensors": tensors_spec(arrs), "num_examples": 77,
                "metrics": {k: scalar_spec(v) for k, v in metrics.items()}}
        msg = self.petal_build("ClientMessage", spec, transport_pb2.ClientMessage)
        self.assertEqual(msg.WhichOneof("msg"), "fit_res")
        res = serde.fit_res_from_proto(msg.fit_res)
        self.assertEqual(res.status.code, Code.OK)
        self.assertEqual(res.num_examples, 77)
        self.assertEqual(res.metrics, metrics)
        for k, v in metrics.items():
            self.assertIs(type(res.metrics[k]), type(v), k)
        got = parameters_to_ndarrays(res.parameters)
        self.assertEqual(len(got), len(arrs))
        for g, a in zip(got, arrs):
            self.assertEqual(g.dtype, a.dtype)
            np.testing.assert_array_equal(g, a)

        spec = {"kind": "evaluate_res", "status": {"code": 0, "message": "Success"},
                "loss": 0.25, "num_examples": 9, "metrics": {"hr": scalar_spec(0.75)}}
        msg = self.petal_build("ClientMessage", spec, transport_pb2.ClientMessage)
        res = serde.evaluate_res_from_proto(msg.evaluate_res)
        self.assertEqual((res.loss, res.num_examples, res.metrics), (0.25, 9, {"hr": 0.75}))

        spec = {"kind": "disconnect_res", "reason": 1}
        msg = self.petal_build("ClientMessage", spec, transport_pb2.ClientMessage)
        self.assertEqual(serde.disconnect_res_from_proto(msg.disconnect_res).reason, "RECONNECT")

        spec = {"kind": "get_properties_res", "status": {"code": 1, "message": "nope"},
                "properties": {k: scalar_spec(v) for k, v in CONFIG.items()}}
        msg = self.petal_build("ClientMessage", spec, transport_pb2.ClientMessage)
        res = serde.get_properties_res_from_proto(msg.get_properties_res)
        self.assertEqual(res.status.code, Code.GET_PROPERTIES_NOT_IMPLEMENTED)
        self.assertEqual(res.properties, CONFIG)

    def test_petal_server_messages_decode_in_flower(self):
        arrs = arrays()
        spec = {"kind": "fit_ins", "tensors": tensors_spec(arrs),
                "config": {k: scalar_spec(v) for k, v in CONFIG.items()}}
        msg = self.petal_build("ServerMessage", spec, transport_pb2.ServerMessage)
        ins = serde.fit_ins_from_proto(msg.fit_ins)
        self.assertEqual(ins.config, CONFIG)
        for g, a in zip(parameters_to_ndarrays(ins.parameters), arrs):
            self.assertEqual(g.dtype, a.dtype)
            np.testing.assert_array_equal(g, a)
        spec = {"kind": "reconnect_ins", "seconds": 12}
        msg = self.petal_build("ServerMessage", spec, transport_pb2.ServerMessage)
        self.assertEqual(msg.reconnect_ins.seconds, 12)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: proto_flwr_interop.py PATH/TO/petal_proto_tool")
    TOOL = sys.argv.pop(1)
    print(f"flwr {flwr.__version__}; numpy {np.__version__}; tool {TOOL}", flush=True)
    unittest.main(verbosity=2)
