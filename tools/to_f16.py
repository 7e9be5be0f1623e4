#!/usr/bin/python3
"""Store a model file's float32 tensors as float16 (half the size; the engine reads F16).

usage: /usr/bin/python3 tools/to_f16.py IN.safetensors OUT.safetensors

Metadata and integer tensors (BN step counters) are kept as they are. Values outside the
float16 range are refused rather than turned into infinities. Needs numpy only.
"""
import json
import os
import struct
import sys

import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out_header, blobs, offset = {}, [], 0
    if "__metadata__" in header:
        out_header["__metadata__"] = header.pop("__metadata__")
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        blob = data[lo:hi]
        dtype = t["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(blob, dtype="<f4")
            if arr.size and np.abs(arr).max() > 65504:
                sys.exit("%s: %s has values beyond the float16 range" % (src, name))
            blob = arr.astype("<f2").tobytes()
            dtype = "F16"
        out_header[name] = {"dtype": dtype, "shape": t["shape"],
                            "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main()
