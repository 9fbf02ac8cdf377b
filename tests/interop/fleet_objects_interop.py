"""Petal's Fleet API wire contract against Flower's own Python classes.

Run by ctest as: python fleet_objects_interop.py PATH/TO/petal_fleet_tool

- The compiled descriptors of Petal's Fleet protos (fleet, message,
  recorddict, node, run, fab, heartbeat, error) agree with flwr's generated
  ones: package, imports, every message, field name, number, type, label,
  oneof, map entry and the Fleet service's methods.
- Messages built by Flower (random metadata, records of every value type,
  numpy arrays of every dtype, raw arrays, unicode keys, repeated arrays and
  records, error messages, several ArrayChunk sizes) deflate in Petal to the
  very same objects: same ids, same bytes, same tree, same post-order.
- Petal rebuilds Flower's objects into the same message.
"""

import json
import os
import random
import string
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from google.protobuf import descriptor_pb2

import flwr
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, MetricRecord, RecordDict
from flwr.app.message import array as array_module
from flwr.app.message.message import make_message
from flwr.app.metadata import Metadata
from flwr.common.serde import message_to_proto
from flwr.proto import (
    error_pb2,
    fab_pb2,
    fleet_pb2,
    heartbeat_pb2,
    message_pb2,
    node_pb2,
    recorddict_pb2,
    run_pb2,
)
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree

TOOL = None

FLOWER_FILES = [error_pb2, node_pb2, recorddict_pb2, message_pb2, heartbeat_pb2, run_pb2, fab_pb2, fleet_pb2]

KEY_POOL = ["w", "b", "arrays", "config", "metrics", "fc.weight", "é", "clé-🌸", 'quo"te', "back\\slash",
            "tab\tkey", "line\nbreak", "", "0", "1", "num-examples", "server-round", "\x7f", "日本語"]


# --- descriptors ----------------------------------------------------------------

def fields_of(desc_proto):
    out = {}
    for f in desc_proto.field:
        oneof = desc_proto.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        out[f.name] = (f.number, f.type, f.label, f.type_name, oneof, f.proto3_optional)
    nested = {n.name: fields_of(n) for n in desc_proto.nested_type}
    enums = {e.name: [(v.name, v.number) for v in e.value] for e in desc_proto.enum_type}
    return {"fields": out, "nested": nested, "enums": enums, "map_entry": bool(desc_proto.options.map_entry)}


def file_summary(fdp):
    return {
        "name": fdp.name,
        "package": fdp.package,
        "syntax": fdp.syntax,
        "dependencies": sorted(fdp.dependency),
        "messages": {m.name: fields_of(m) for m in fdp.message_type},
        "enums": {e.name: [(v.name, v.number) for v in e.value] for e in fdp.enum_type},
        "services": {
            s.name: [(m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                     for m in s.method]
            for s in fdp.service
        },
    }


# --- Flower proto -> the tool's JSON spec ------------------------------------------

def bits(d):
    return struct.pack("<d", d).hex()


def value_spec(key, value_proto):
    kind = value_proto.WhichOneof("value")
    v = getattr(value_proto, kind)
    if kind == "double":
        value = bits(v)
    elif kind == "bytes":
        value = v.hex()
    elif kind == "double_list":
        value = [bits(x) for x in v.vals]
    elif kind == "bytes_list":
        value = [x.hex() for x in v.vals]
    elif kind.endswith("_list"):
        value = list(v.vals)
    else:
        value = v
    return {"key": key, "type": kind, "value": value}


def spec_from_proto(msg_proto):
    md = msg_proto.metadata
    meta = {
        "run_id": md.run_id, "message_id": md.message_id, "src_node_id": md.src_node_id,
        "dst_node_id": md.dst_node_id, "reply_to_message_id": md.reply_to_message_id,
        "group_id": md.group_id, "ttl_bits": bits(md.ttl), "message_type": md.message_type,
        "created_at_bits": bits(md.created_at),
    }
    if md.HasField("src_task_id"):
        meta["src_task_id"] = md.src_task_id
    if md.HasField("dst_task_id"):
        meta["dst_task_id"] = md.dst_task_id
    spec = {"metadata": meta}
    if msg_proto.HasField("error"):
        spec["error"] = {"code": msg_proto.error.code, "reason": msg_proto.error.reason}
        return spec
    content = []
    for item in msg_proto.content.items:
        kind = item.WhichOneof("value")
        if kind == "array_record":
            items = [{"key": a.key, "dtype": a.value.dtype, "shape": list(a.value.shape),
                      "stype": a.value.stype, "data_hex": a.value.data.hex()}
                     for a in item.array_record.items]
            content.append({"key": item.key, "kind": "array", "items": items})
        elif kind == "config_record":
            content.append({"key": item.key, "kind": "config",
                            "items": [value_spec(c.key, c.value) for c in item.config_record.items]})
        else:
            content.append({"key": item.key, "kind": "metric",
                            "items": [value_spec(c.key, c.value) for c in item.metric_record.items]})
    spec["content"] = content
    return spec


def tree_json(tree):
    return {"id": tree.object_id, "children": [tree_json(c) for c in tree.children]}


# --- random Flower messages ----------------------------------------------------------

def random_key(rng, used):
    for _ in range(100):
        key = rng.choice(KEY_POOL) if rng.random() < 0.6 else "".join(
            rng.choice(string.ascii_letters + "-_.") for _ in range(rng.randint(1, 12)))
        if key not in used:
            used.add(key)
            return key
    raise RuntimeError("ran out of keys")


def random_ndarray(rng, nprng, big=False):
    dtype = rng.choice([np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_])
    if big:
        shape = (700_000,)  # 5.3 MB as float64: two chunks at Flower's 5 MiB
        dtype = np.float64
    else:
        shape = tuple(rng.randint(0, 5) for _ in range(rng.randint(0, 3)))
    if dtype == np.bool_:
        return nprng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return nprng.integers(0, 100, size=shape).astype(dtype)
    return nprng.standard_normal(shape).astype(dtype)


def random_scalar(rng, metric):
    choices = ["float", "int", "bigint", "float_list", "int_list"]
    if not metric:
        choices += ["bool", "str", "bytes", "bool_list", "str_list", "bytes_list", "biguint_list"]
    kind = rng.choice(choices)
    if kind == "float":
        return rng.choice([0.0, -0.0, 1e-300, 3.141592653589793, float(rng.uniform(-1e6, 1e6)),
                           float("inf"), float("-inf")])
    if kind == "int":
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == "bigint":
        return rng.randint(2**63, 2**64 - 1)
    if kind == "float_list":
        return [rng.uniform(-5, 5) for _ in range(rng.randint(1, 4))]
    if kind == "int_list":
        return [rng.randint(-1000, 1000) for _ in range(rng.randint(1, 4))]
    if kind == "biguint_list":
        return [rng.randint(0, 10), 2**64 - 1]
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "str":
        return rng.choice(KEY_POOL)
    if kind == "bytes":
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 8)))
    if kind == "bool_list":
        return [rng.random() < 0.5 for _ in range(rng.randint(1, 4))]
    if kind == "str_list":
        return [rng.choice(KEY_POOL) for _ in range(rng.randint(1, 3))]
    return [bytes([rng.randint(0, 255)]) for _ in range(rng.randint(1, 3))]


def random_message(rng, nprng, big=False):
    meta = Metadata(
        run_id=rng.randint(0, 2**64 - 1),
        message_id="",
        src_node_id=rng.randint(0, 2**64 - 1),
        dst_node_id=rng.randint(0, 2**64 - 1),
        reply_to_message_id=rng.choice(["", "%064x" % rng.getrandbits(256)]),
        group_id=rng.choice(["", "3", "round é"]),
        created_at=rng.uniform(1.7e9, 1.9e9),
        ttl=rng.choice([43200.0, rng.uniform(0.5, 1e5)]),
        message_type=rng.choice(["train", "evaluate", "query", "train.custom", "get_parameters"]),
        src_task_id=rng.choice([None, 0, rng.randint(1, 2**64 - 1)]),
        dst_task_id=rng.choice([None, 0, rng.randint(1, 2**64 - 1)]),
    )
    if not big and rng.random() < 0.2:
        return make_message(metadata=meta, error=Error(code=rng.randint(0, 8), reason=rng.choice(KEY_POOL)))
    records = {}
    used = set()
    shared_array = Array(random_ndarray(rng, nprng))
    shared_config = ConfigRecord({"same": 1, "text": "x"})
    for _ in range(rng.randint(0 if not big else 1, 4)):
        kind = rng.choice(["array", "config", "metric"]) if not big else "array"
        key = random_key(rng, used)
        if kind == "array":
            arrays = {}
            akeys = set()
            for j in range(rng.randint(0, 4) if not big else 1):
                r = rng.random()
                if big:
                    arrays[random_key(rng, akeys)] = Array(random_ndarray(rng, nprng, big=True))
                elif r < 0.2:
                    arrays[random_key(rng, akeys)] = shared_array
                elif r < 0.35:
                    data = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 40)))
                    arrays[random_key(rng, akeys)] = Array(dtype=rng.choice(["", "weird", "é"]),
                                                           shape=tuple(rng.randint(0, 9) for _ in range(2)),
                                                           stype=rng.choice(["", "raw", "numpy.ndarray"]),
                                                           data=data)
                else:
                    arrays[random_key(rng, akeys)] = Array(random_ndarray(rng, nprng))
            records[key] = ArrayRecord(arrays)
        elif kind == "config":
            if rng.random() < 0.2:
                records[key] = shared_config
            else:
                ckeys = set()
                records[key] = ConfigRecord({random_key(rng, ckeys): random_scalar(rng, False)
                                             for _ in range(rng.randint(0, 5))})
        else:
            mkeys = set()
            records[key] = MetricRecord({random_key(rng, mkeys): random_scalar(rng, True)
                                         for _ in range(rng.randint(0, 5))})
    return make_message(metadata=meta, content=RecordDict(records))


class FleetObjectsInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def tool(self, *args):
        proc = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_descriptors_match_flower(self):
        out = self.path("desc.bin")
        self.tool("descriptors", out)
        ours = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            ours.ParseFromString(f.read())
        ours_by_name = {f.name: f for f in ours.file}
        for module in FLOWER_FILES:
            theirs = descriptor_pb2.FileDescriptorProto()
            module.DESCRIPTOR.CopyToProto(theirs)
            with self.subTest(file=theirs.name):
                self.assertIn(theirs.name, ours_by_name)
                self.assertEqual(file_summary(ours_by_name[theirs.name]), file_summary(theirs))
        fleet = ours_by_name["flwr/proto/fleet.proto"]
        self.assertEqual(fleet.package, "flwr.proto")
        self.assertEqual([m.name for m in fleet.service[0].method],
                         ["RegisterNode", "ActivateNode", "DeactivateNode", "UnregisterNode",
                          "SendNodeHeartbeat", "PullMessages", "PushMessages", "GetRun", "GetFab",
                          "PushObject", "PullObject", "ConfirmMessageReceived"])

    def compare(self, msg, chunk_size):
        py_objects = {oid: obj.deflate().hex() for oid, obj in get_all_nested_objects(msg).items()}
        py_tree = tree_json(get_object_tree(msg))
        msg_proto = message_to_proto(msg)
        spec = spec_from_proto(msg_proto)
        spec_path, out_path = self.path("spec.json"), self.path("out.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        self.tool("deflate", spec_path, out_path, chunk_size)
        with open(out_path) as f:
            petal = json.load(f)
        self.assertEqual(petal["message_id"], msg.object_id)
        self.assertEqual(set(petal["objects"]), set(py_objects))
        for oid, content in py_objects.items():
            self.assertEqual(petal["objects"][oid], content, f"object {oid}")
        self.assertEqual(petal["order"], list(py_objects))  # post-order, children first
        self.assertEqual(petal["tree"], py_tree)

        # And back: Petal rebuilds Flower's objects into the same message.
        objects_path = self.path("objects.json")
        with open(objects_path, "w") as f:
            json.dump({"tree": py_tree, "objects": py_objects}, f)
        self.tool("inflate", objects_path, out_path)
        with open(out_path) as f:
            rebuilt = json.load(f)
        expected = dict(spec)
        expected["metadata"] = dict(spec["metadata"], message_id=msg.object_id)
        self.assertEqual(rebuilt, expected)

    def test_random_messages_deflate_to_flowers_objects(self):
        rng = random.Random(20261125)
        nprng = np.random.default_rng(7)
        default = array_module.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
        try:
            for i in range(60):
                chunk_size = rng.choice([1, 7, 64, 1000, default])
                array_module.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE = chunk_size
                msg = random_message(rng, nprng)
                with self.subTest(case=i, chunk_size=chunk_size):
                    self.compare(msg, chunk_size)
        finally:
            array_module.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE = default

    def test_arrays_larger_than_one_default_chunk(self):
        self.assertEqual(array_module.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE, 5 * 1024 * 1024)
        rng = random.Random(3)
        nprng = np.random.default_rng(3)
        msg = random_message(rng, nprng, big=True)
        array_record = next(iter(msg.content.array_records.values()))
        self.assertGreater(len(next(iter(array_record.values())).slice_array()), 1)
        self.compare(msg, 5 * 1024 * 1024)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: fleet_objects_interop.py PATH/TO/petal_fleet_tool")
    TOOL = sys.argv.pop(1)
    print(f"flwr {flwr.__version__}; numpy {np.__version__}; tool {TOOL}", flush=True)
    unittest.main(verbosity=2)
