#!/usr/bin/env python3
"""A tiny four-class IDX dataset for the command-line tests: size x size gray images, each a
bright quadrant (the class) on a dark background, plus uniform noise.

usage: make_quadrants.py OUTDIR SIZE TRAIN_COUNT TEST_COUNT SEED [--gzip]
Writes train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte (with .gz when --gzip)."""
import gzip
import random
import struct
import sys


def write(path, magic, dims, payload, compress):
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload
    with (gzip.open(path + ".gz", "wb") if compress else open(path, "wb")) as f:
        f.write(data)


def main(argv):
    if len(argv) not in (6, 7):
        sys.exit(__doc__)
    out, size, n_train, n_test, seed = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5])
    compress = argv[6:] == ["--gzip"]
    half = size // 2
    rng = random.Random(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs, labels = bytearray(), bytearray()
        for i in range(n):
            c = i % 4
            oy, ox = (c // 2) * half, (c % 2) * half
            for y in range(size):
                for x in range(size):
                    v = 200 if oy <= y < oy + half and ox <= x < ox + half else 20
                    imgs.append(max(0, min(255, v + rng.randint(-20, 20))))
            labels.append(c)
        write("%s/%s-images-idx3-ubyte" % (out, split), 0x803, (n, size, size), bytes(imgs), compress)
        write("%s/%s-labels-idx1-ubyte" % (out, split), 0x801, (n,), bytes(labels), compress)


if __name__ == "__main__":
    main(sys.argv)
