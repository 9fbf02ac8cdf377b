"""Petal's .npy codec against real numpy, in both directions.

Run by ctest as: python npy_numpy_interop.py PATH/TO/petal_npy_tool

- numpy.save -> Petal decode: dtype, shape and C-order little-endian bytes match.
- Petal encode -> numpy.load: equal arrays, and the file is byte-for-byte what
  numpy.save writes for the same array.
- Big-endian, Fortran-order and version 2.0/3.0 files decode to the same data.
- Malformed files (truncated, pickled objects, unsupported dtypes) fail with a
  clear message and exit status 2, never a crash.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

TOOL = None
DTYPES = ["float16", "float32", "float64", "int32", "int64", "uint8", "bool"]
SHAPES = [(), (1,), (7,), (2, 3, 4), (0,), (3, 0, 2)]
LARGE_BYTES = 65 * 1024 * 1024  # > 64 MiB


def make_array(dtype, shape, rng):
    count = int(np.prod(shape)) if shape else 1
    if dtype == "bool":
        values = rng.integers(0, 2, size=count).astype(bool)
    elif dtype.startswith("float"):
        values = rng.standard_normal(count).astype(dtype)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)
        values[: min(count, 4)] = specials[: min(count, 4)]
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=count, dtype=dtype, endpoint=True)
    return values.reshape(shape)


def numpy_save_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def c_le_bytes(array):
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes(order="C")


class NpyInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(2024)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_tool(self, *args):
        return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=300)

    def decode_with_petal(self, npy_bytes):
        src, raw = self.path("in.npy"), self.path("out.raw")
        with open(src, "wb") as f:
            f.write(npy_bytes)
        proc = self.run_tool("decode", src, raw)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        meta = json.loads(proc.stdout)
        with open(raw, "rb") as f:
            return meta, f.read()

    def encode_with_petal(self, array):
        raw, out = self.path("in.raw"), self.path("ours.npy")
        with open(raw, "wb") as f:
            f.write(c_le_bytes(array))
        shape = ",".join(str(d) for d in array.shape)
        proc = self.run_tool("encode", str(array.dtype), shape, raw, out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, "rb") as f:
            return f.read()

    def check_numpy_to_petal(self, original, npy_bytes):
        meta, raw = self.decode_with_petal(npy_bytes)
        self.assertEqual(meta["dtype"], np.dtype(original.dtype).newbyteorder("=").name)
        self.assertEqual(tuple(meta["shape"]), original.shape)
        self.assertEqual(raw, c_le_bytes(original))

    def check_petal_to_numpy(self, original):
        ours = self.encode_with_petal(original)
        loaded = np.load(io.BytesIO(ours), allow_pickle=False)
        self.assertEqual(loaded.dtype, original.dtype)
        self.assertEqual(loaded.shape, original.shape)
        self.assertTrue(np.array_equal(loaded, original, equal_nan=original.dtype.kind == "f"))
        # Byte-exact with what numpy.save writes for the same array.
        self.assertEqual(ours, numpy_save_bytes(original))

    def test_every_dtype_and_shape_both_directions(self):
        for dtype in DTYPES:
            for shape in SHAPES:
                with self.subTest(dtype=dtype, shape=shape):
                    a = make_array(dtype, shape, self.rng)
                    self.check_numpy_to_petal(a, numpy_save_bytes(a))
                    self.check_petal_to_numpy(a)

    def test_large_arrays_every_dtype(self):
        for dtype in DTYPES:
            with self.subTest(dtype=dtype):
                count = LARGE_BYTES // np.dtype(dtype).itemsize + 3
                a = make_array(dtype, (count,), self.rng)
                self.assertGreater(a.nbytes, 64 * 1024 * 1024)
                self.check_numpy_to_petal(a, numpy_save_bytes(a))
                self.check_petal_to_numpy(a)

    def test_large_multidimensional(self):
        a = make_array("float32", (4100, 4100), self.rng)  # 67 MB
        self.check_numpy_to_petal(a, numpy_save_bytes(a))
        self.check_petal_to_numpy(a)

    def test_big_endian_is_converted(self):
        for dtype in ["float16", "float32", "float64", "int32", "int64"]:
            for shape in [(), (5,), (2, 3, 4)]:
                with self.subTest(dtype=dtype, shape=shape):
                    a = make_array(dtype, shape, self.rng).astype(np.dtype(dtype).newbyteorder(">"))
                    npy = numpy_save_bytes(a)
                    self.assertIn(b"'>", npy[:128])
                    self.check_numpy_to_petal(a, npy)

    def test_fortran_order_is_converted(self):
        for dtype in DTYPES:
            for shape in [(2, 3), (2, 3, 4), (1, 5, 1, 2)]:
                with self.subTest(dtype=dtype, shape=shape):
                    a = np.asfortranarray(make_array(dtype, shape, self.rng))
                    npy = numpy_save_bytes(a)
                    self.assertIn(b"'fortran_order': True", npy[:128])
                    self.check_numpy_to_petal(a, npy)

    def test_fortran_big_endian(self):
        a = np.asfortranarray(make_array("float64", (3, 4, 2), self.rng).astype(">f8"))
        self.check_numpy_to_petal(a, numpy_save_bytes(a))

    def test_header_versions_2_and_3(self):
        a = make_array("float32", (3, 2), self.rng)
        for version in [(1, 0), (2, 0), (3, 0)]:
            with self.subTest(version=version):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, a, version=version, allow_pickle=False)
                npy = buf.getvalue()
                self.assertEqual(tuple(npy[6:8]), version)
                self.check_numpy_to_petal(a, npy)

    def expect_petal_error(self, npy_bytes, needle):
        src, raw = self.path("bad.npy"), self.path("bad.raw")
        with open(src, "wb") as f:
            f.write(npy_bytes)
        proc = self.run_tool("decode", src, raw)
        self.assertEqual(proc.returncode, 2, f"stdout={proc.stdout} stderr={proc.stderr}")
        self.assertIn(needle, proc.stderr)

    def test_malformed_inputs_give_clear_errors(self):
        good = numpy_save_bytes(make_array("float64", (10,), self.rng))
        self.expect_petal_error(good[:5], "shorter than the magic")
        self.expect_petal_error(good[:60], "truncated .npy data")
        self.expect_petal_error(good[:-1], "truncated .npy data")
        self.expect_petal_error(good + b"\0", "trailing bytes")
        self.expect_petal_error(b"PK\x03\x04" + good[4:], "bad magic")
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        self.expect_petal_error(buf.getvalue(), "object dtype")
        self.expect_petal_error(numpy_save_bytes(np.zeros(3, dtype=np.complex64)), "unsupported dtype")
        self.expect_petal_error(numpy_save_bytes(np.zeros(3, dtype=np.int16)), "unsupported dtype '<i2'")
        structured = np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])
        self.expect_petal_error(numpy_save_bytes(structured), "structured dtypes")
        # A header numpy itself refuses to load must not load in Petal either.
        mangled = good.replace(b"'shape': (10,)", b"'shape': [10] ")
        with self.assertRaises(Exception):
            np.load(io.BytesIO(mangled), allow_pickle=False)
        self.expect_petal_error(mangled, "must be a tuple")


class NpzInterop(unittest.TestCase):
    """numpy.savez / savez_compressed archives read by Petal; Petal's archives read by numpy."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(5)
        self.arrays = {
            "item_embedding": rng.standard_normal((50, 8)).astype(np.float32),
            "mlp.0.weight": rng.standard_normal((16, 8)),
            "scalar": np.array(3, dtype=np.int64),
            "flags": np.array([True, False]),
            "bytes": rng.integers(0, 255, size=(3, 0), dtype=np.uint8),
            "half": np.arange(4, dtype=np.float16),
            "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
        }

    def tearDown(self):
        self.tmp.cleanup()

    def run_tool(self, *args):
        return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=120)

    def check_roundtrip(self, writer):
        src = os.path.join(self.tmp.name, "numpy.npz")
        out = os.path.join(self.tmp.name, "petal.npz")
        writer(src, **self.arrays)
        listing = self.run_tool("npz-list", src)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        names = [e["name"] for e in json.loads(listing.stdout)]
        self.assertEqual(names, list(self.arrays))
        proc = self.run_tool("npz-reencode", src, out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with np.load(out, allow_pickle=False) as loaded:
            self.assertEqual(list(loaded.keys()), list(self.arrays))
            for name, original in self.arrays.items():
                got = loaded[name]
                self.assertEqual(got.dtype, original.dtype.newbyteorder("<"), name)
                self.assertEqual(got.shape, original.shape, name)
                np.testing.assert_array_equal(got, original)

    def test_savez(self):
        self.check_roundtrip(np.savez)

    def test_savez_compressed(self):
        self.check_roundtrip(np.savez_compressed)

    def test_corrupt_archive_is_an_error(self):
        src = os.path.join(self.tmp.name, "numpy.npz")
        np.savez(src, **self.arrays)
        with open(src, "rb") as f:
            data = bytearray(f.read())
        data[200] ^= 0xFF
        bad = os.path.join(self.tmp.name, "bad.npz")
        with open(bad, "wb") as f:
            f.write(data)
        proc = self.run_tool("npz-list", bad)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("bad.npz", proc.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: npy_numpy_interop.py PATH/TO/petal_npy_tool")
    TOOL = sys.argv.pop(1)
    print(f"numpy {np.__version__}; tool {TOOL}", flush=True)
    unittest.main(verbosity=2)
