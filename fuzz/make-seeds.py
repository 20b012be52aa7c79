#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made at fuzz time (nothing big is committed).

  make-seeds.py OUT [ASSETS]

OUT/<target>/ receives small valid (and a few nearly valid) inputs: checkpoints written the way
torch.save writes them (pickle protocol 2 with persistent ids, in a zip or in the legacy stream)
without needing torch, safetensors, .npy files of each dtype, images of every kind the loader
reads (from a real CamVid-OOD frame, shrunk, when ASSETS has one), dataset lists, and metric
states. Small real files of ASSETS (../shared) are copied as they are.
"""
import io, os, pickle, struct, sys, types, zipfile, json, glob, shutil
import numpy as np

out = sys.argv[1]
assets = sys.argv[2] if len(sys.argv) > 2 else None


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- pickles as torch writes them, without torch ----------------------------------------------
# Fake torch modules, so that the pickler writes GLOBAL 'torch._utils _rebuild_tensor_v2',
# 'torch FloatStorage', 'collections OrderedDict' as torch.save does.
torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils


def _rebuild_tensor_v2(*a):
    pass


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
storage_types = {}
for nm in ("FloatStorage", "HalfStorage", "LongStorage", "ByteStorage", "BFloat16Storage", "DoubleStorage"):
    t = type(nm, (), {})
    t.__module__ = "torch"
    setattr(torch, nm, t)
    storage_types[nm] = t


class Storage:
    def __init__(self, kind, key, data):
        self.kind, self.key, self.data = kind, key, data


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        import collections
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


ITEM = {"FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "ByteStorage": 1, "BFloat16Storage": 2, "DoubleStorage": 8}


def state_dict():
    import collections
    s0 = Storage("FloatStorage", "0", np.arange(6, dtype="<f4").tobytes())
    s1 = Storage("HalfStorage", "1", np.array([1, -2, 3], dtype="<f2").tobytes())
    s2 = Storage("LongStorage", "2", np.array([7], dtype="<i8").tobytes())
    sd = collections.OrderedDict()
    sd["conv.weight"] = Tensor(s0, 0, (2, 3), (3, 1))
    sd["conv.t"] = Tensor(s0, 0, (3, 2), (1, 3))        # a transposed view
    sd["bn.running_var"] = Tensor(s1, 0, (3,), (1,))
    sd["bn.num_batches_tracked"] = Tensor(s2, 0, (), ())
    return {"meta": {"epoch": 3}, "state_dict": sd}, [s0, s1, s2]


def dump(obj, legacy):
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=2)

    def pid(o):
        if isinstance(o, Storage):
            n = len(o.data) // ITEM[o.kind]
            if legacy:
                return ("storage", storage_types[o.kind], o.key, "cpu", n, None)
            return ("storage", storage_types[o.kind], o.key, "cpu", n)
        return None
    p.persistent_id = pid
    p.dump(obj)
    return f.getvalue()


def zip_pth(obj, storages):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", dump(obj, False))
        for s in storages:
            z.writestr("archive/data/" + s.key, s.data)
        z.writestr("archive/version", "3\n")
    return b.getvalue()


def legacy_pth(obj, storages):
    b = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
    b += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    b += dump(obj, True) + pickle.dumps([s.key for s in storages], protocol=2)
    for s in storages:
        b += struct.pack("<q", len(s.data) // ITEM[s.kind]) + s.data
    return b


obj, st = state_dict()
put("pickle", "state_dict.pkl", dump(obj, False))
put("pickle", "legacy_obj.pkl", dump(obj, True))
put("pickle", "plain.pkl", pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)], "b": {1, 2}}, protocol=2))
put("pickle", "proto4.pkl", pickle.dumps({"k" * 300: list(range(300)), "f": frozenset([1])}, protocol=4))
put("pickle", "proto0.pkl", pickle.dumps({"a": [1, 2], "b": "s"}, protocol=0))
put("zip", "crafted.pth", zip_pth(obj, st))
put("pth_legacy", "crafted.pth", legacy_pth(obj, st))
put("pickle", "legacy_stream.pkl", legacy_pth(obj, st))

# ---- safetensors ------------------------------------------------------------------------------
def safetensors(tensors, meta=None):
    hdr, data = {}, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, arr, code in tensors:
        raw = arr.tobytes()
        hdr[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "mixed.safetensors", safetensors([
    ("w", np.arange(6, dtype="<f4").reshape(2, 3), "F32"), ("h", np.ones(3, "<f2"), "F16"),
    ("d", np.ones(2, "<f8"), "F64"), ("i", np.arange(4, dtype="<i8"), "I64"), ("b", np.zeros(1, "u1"), "BOOL"),
    ("s", np.array(1.5, "<f4"), "F32"), ("z", np.zeros((0, 3), "<f4"), "F32")], {"format": "pt"}))
put("safetensors", "bf16.safetensors", safetensors([("x", np.arange(4, dtype="<u2"), "BF16")]))

# ---- .npy -------------------------------------------------------------------------------------
for code in ("<f4", "<f8", "|u1", "<i8", "<i4", "|b1", "<f2", "<i2", "|i1"):
    b = io.BytesIO()
    np.save(b, (np.arange(12) % 3).astype(code).reshape(3, 4))
    put("npy", "a%s.npy" % code.strip("<|"), b.getvalue())
b = io.BytesIO(); np.lib.format.write_array(b, np.zeros((2, 2), "<f4"), version=(2, 0)); put("npy", "v2.npy", b.getvalue())
b = io.BytesIO(); np.save(b, np.float32(3)); put("npy", "scalar.npy", b.getvalue())
b = io.BytesIO(); np.save(b, np.zeros((2, 3), "<f4", order="F")); put("npy", "fortran.npy", b.getvalue())

# ---- images -----------------------------------------------------------------------------------
from PIL import Image
base = None
if assets:
    frames = sorted(glob.glob(os.path.join(assets, "data", "camvid-ood", "test_ood", "*.png")))
    if frames:
        base = Image.open(frames[0]).convert("RGB").resize((24, 18))
if base is None:
    base = Image.fromarray((np.arange(24 * 18 * 3) % 251).astype(np.uint8).reshape(18, 24, 3))


def img(name, im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    put("image", name, b.getvalue())


img("rgb.png", base, "PNG")
img("gray.png", base.convert("L"), "PNG")
img("la.png", base.convert("LA"), "PNG")
img("rgba.png", base.convert("RGBA"), "PNG")
img("palette.png", base.convert("P"), "PNG")
img("bits1.png", base.convert("1"), "PNG")
img("gray16.png", Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257)), "PNG")
img("base.jpg", base, "JPEG", quality=80)
img("progressive.jpg", base, "JPEG", progressive=True)
img("gray.jpg", base.convert("L"), "JPEG")
img("cmyk.jpg", base.convert("CMYK"), "JPEG")
img("lossy.webp", base, "WEBP", quality=50)
img("lossless.webp", base, "WEBP", lossless=True)
img("alpha.webp", base.convert("RGBA"), "WEBP")
if assets:
    for p in sorted(glob.glob(os.path.join(assets, "data", "camvid-ood", "testannot_ood", "*.png")))[:1]:
        img("label_real.png", Image.open(p).resize((24, 18), Image.NEAREST), "PNG")

# ---- JSON -------------------------------------------------------------------------------------
put("json", "frame_list.json", b'["a.jpg", "b.jpg"]')
put("json", "escapes.json", json.dumps({"s": "\u00e9\ud83d\ude00\n\t\"\\/", "n": [0, -1.5e-3, 1e308, 12345678901234567890],
                                        "b": [True, False, None], "o": {}}).encode())
if assets:
    small = [p for p in sorted(glob.glob(os.path.join(assets, "**", "*.json"), recursive=True)) if os.path.getsize(p) < 4096]
    for k, p in enumerate(small[:8]):
        shutil.copy(p, os.path.join(out, "json", "asset%d.json" % k))
    npys = sorted(glob.glob(os.path.join(assets, "golden", "metrics", "*.npy")))
    for k, p in enumerate([p for p in npys if os.path.getsize(p) < 8192]):
        shutil.copy(p, os.path.join(out, "npy", "asset%d.npy" % k))

# ---- dataset lists (the first byte picks the layout; see fuzz/targets.c) ----------------------
put("datasets", "roadanomaly", b"\x00" + b'["a.jpg"]')
put("datasets", "roadanomaly2", b"\x00" + b'["a.jpg", "b.jpg"]')
put("datasets", "camvid", b"\x01" + b"test_ood/a.png testannot_ood/a.png\n\n")
put("datasets", "camvid2", b"\x01" + b"test_ood/a.png testannot_ood/a.png\ntest_ood/b.png testannot_ood/b.png\n")
if assets:
    lst = os.path.join(assets, "data", "camvid-ood", "test_ood.txt")
    if os.path.exists(lst):
        put("datasets", "camvid_real", b"\x01" + open(lst, "rb").read()[:300])
put("datasets", "smiyc", b"\x02a.jpg\nb.webp\n#a_labels_semantic.png\n#b_labels_semantic.png\n")
put("datasets", "fishy", b"\x03a.png\n#a.png\nb.jpg\n#b_labels.png\n#c.png\n")
put("datasets", "generic", b"\x04a.png\n#a_l.png\nc.jpeg\n")
put("datasets", "values", b"\x051,2\n250-255\n0-10")

# ---- metric states (eval/mstate.c's format, version 2) ----------------------------------------
def leb(v):
    b = bytearray()
    while True:
        c = v & 127
        v >>= 7
        b.append(c | (128 if v else 0))
        if not v:
            return bytes(b)


def key(f):
    u = struct.unpack("<I", struct.pack("<f", f))[0]
    return u ^ 0xFFFFFFFF if u & 0x80000000 else u | 0x80000000


def mstate(meta, sections):
    b = b"OODSEGMS" + struct.pack("<III", 2, len(sections), len(meta)) + meta
    for name, runs in sections:
        P, N = sum(r[1] for r in runs), sum(r[2] for r in runs)
        b += name.encode().ljust(32, b"\0") + struct.pack("<QQQ", P, N, len(runs))
        prev = 1 << 32
        for s, p, n in sorted(runs, key=lambda r: -key(r[0])):
            k = key(s)
            b += leb(prev - k) + leb(p) + leb(n)
            prev = k
        b += struct.pack("<I", 0x444E4553)
    return b


put("mstate", "one.state", mstate(b'{"images": 2}', [("maxlogit", [(0.9, 3, 1), (0.5, 1, 4), (-2.0, 0, 7)])]))
put("mstate", "two.state", mstate(b"{}", [("a", [(1.0, 1, 0), (0.0, 0, 1)]), ("b", [(3.0, 2, 2)])]))
put("mstate", "noneg.state", mstate(b"", [("a", [(1.0, 5, 0)])]))
