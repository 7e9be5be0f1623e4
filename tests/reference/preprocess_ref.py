"""Makes test images and their PIL + torchvision evaluation preprocessing for test_image_pil.

usage: /usr/bin/python3 preprocess_ref.py OUT_DIR

Exits 77 (ctest "skipped") when PIL or numpy is missing, unless GN_REQUIRE_REFERENCE=1.
torchvision is used when importable; otherwise the same steps are done with PIL + numpy
(torchvision 0.14's rules: shorter side to S, longer int(S * long / short), PIL BILINEAR;
CenterCrop with zero padding and int(round((len - crop) / 2.0)) offsets; float32 /255, -mean,
/std).

The images are synthetic but photo-like (smooth gradients, shapes, blur, seeded noise), in the
formats the decoder must match PIL on. For each image and configuration it writes
  <image>.<config>.u8   the crop before ToTensor: crop x crop x channels bytes (HWC)
  <image>.<config>.f32  the network input: channels x crop x crop float32, little-endian (CHW)
and finally manifest.txt, one line per pair:
  image config channels resize_size input_size mean0 mean1 mean2 std0 std1 std2
"""
import os
import struct
import sys
import zlib

REQUIRED = os.environ.get("GN_REQUIRE_REFERENCE") == "1"

try:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(f"preprocess_ref: {exc}" + ("" if REQUIRED else "; skipping"), file=sys.stderr)
    sys.exit(1 if REQUIRED else 77)

try:
    import torchvision.transforms as T

    HAVE_TV = True
except Exception:  # torchvision missing or broken: use the PIL + numpy path
    HAVE_TV = False

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
# name: (channels, resize_size, input_size, (mean, std))
CONFIGS = {
    "rgb224": (3, 256, 224, IMAGENET),
    "gray224": (1, 256, 224, HALF),
    "rgb64": (3, 73, 64, IMAGENET),   # strong downscaling, odd sizes
    "pad64": (3, 50, 64, IMAGENET),   # crop larger than the resize: zero padding
}


def synth(w, h, seed):
    """A photo-like RGB image: gradients, shapes, blur and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(3):
            fx, fy = rng.uniform(0.5, 3.0, 2) * np.pi / np.array([w, h])
            px, py = rng.uniform(0, 2 * np.pi, 2)
            base[..., c] += rng.uniform(20, 50) * np.sin(fx * x + px) * np.cos(fy * y + py)
        base[..., c] += rng.uniform(80, 170)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, x1 = sorted(rng.integers(-w // 4, w + w // 4, 2))
        y0, y1 = sorted(rng.integers(-h // 4, h + h // 4, 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=color)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=color)
        else:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(5)]
            draw.polygon(pts, fill=color)
    for _ in range(6):
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(img).astype(np.float64) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_rgb16_png(path, rgb8, seed):
    """16-bit RGB PNG (PIL cannot write one): high bytes from rgb8, random low bytes."""
    rng = np.random.default_rng(seed)
    h, w, _ = rgb8.shape
    v = rgb8.astype(">u2") * 256 + rng.integers(0, 256, rgb8.shape).astype(">u2")
    raw = b"".join(b"\x00" + v[r].tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def make_images(out):
    """Writes the test images; returns their file names."""
    files = []

    def save(img, name, **kw):
        img.save(os.path.join(out, name), **kw)
        files.append(name)

    save(synth(500, 375, 1), "photo_500x375.jpg", quality=90)
    save(synth(333, 500, 2), "photo_333x500.jpg", quality=90)
    save(synth(257, 256, 3), "photo_257x256.jpg", quality=90)
    save(synth(480, 360, 4), "photo_480x360_prog444.jpg", quality=90, progressive=True,
         subsampling=0)
    save(synth(320, 240, 5).convert("L"), "gray_320x240.jpg", quality=90)
    save(synth(300, 200, 6).convert("CMYK"), "cmyk_300x200.jpg", quality=90)
    save(synth(350, 262, 17), "photo_350x262_422.jpg", quality=85, subsampling=1)
    save(synth(640, 480, 7), "photo_640x480.png")
    save(synth(300, 450, 8).convert("L"), "gray_300x450.png")
    save(synth(400, 300, 9).quantize(64), "palette_400x300.png")
    save(synth(160, 120, 18).quantize(16), "palette_trns_160x120.png", transparency=3)
    save(synth(150, 100, 19).convert("L"), "gray_trns_150x100.png", transparency=128)
    rgba = synth(350, 260, 10).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 350).astype(np.uint8), (260, 1))
    rgba.putalpha(Image.fromarray(alpha, "L"))
    save(rgba, "rgba_350x260.png")
    save(synth(100, 80, 11), "small_100x80.png")
    save(synth(120, 90, 12).convert("1"), "bilevel_120x90.png")
    save(synth(40, 700, 13), "tall_40x700.png")
    save(synth(200, 150, 14).convert("LA"), "graya_200x150.png")
    write_rgb16_png(os.path.join(out, "rgb16_64x48.png"), np.asarray(synth(64, 48, 15)), 16)
    files.append("rgb16_64x48.png")
    return files


def resize_shape(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    return (size, new_long) if w <= h else (new_long, size)


def preprocess_pil(img, resize, crop, mean, std):
    """torchvision 0.14's Resize + CenterCrop + ToTensor + Normalize on PIL, without torch."""
    img = img.resize(resize_shape(*img.size, resize), Image.BILINEAR)
    w, h = img.size
    if crop > w or crop > h:
        left = (crop - w) // 2 if crop > w else 0
        top = (crop - h) // 2 if crop > h else 0
        right = (crop - w + 1) // 2 if crop > w else 0
        bottom = (crop - h + 1) // 2 if crop > h else 0
        canvas = Image.new(img.mode, (w + left + right, h + top + bottom), 0)
        canvas.paste(img, (left, top))
        img = canvas
        w, h = img.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    u8 = np.asarray(img, dtype=np.uint8)
    x = u8.astype(np.float32) / np.float32(255)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return u8, ((x - m) / s).astype(np.float32)


def preprocess_tv(img, resize, crop, mean, std):
    cropped = T.CenterCrop(crop)(T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR)(img))
    u8 = np.asarray(cropped, dtype=np.uint8)
    return u8, T.Normalize(mean, std)(T.ToTensor()(cropped)).numpy().astype(np.float32)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = make_images(out)
    lines = [f"# PIL {Image.__version__}, numpy {np.__version__}, "
             f"{'torchvision ' + __import__('torchvision').__version__ if HAVE_TV else 'no torchvision'}"]
    run = preprocess_tv if HAVE_TV else preprocess_pil
    for name in files:
        for cfg, (channels, resize, crop, (mean, std)) in CONFIGS.items():
            img = Image.open(os.path.join(out, name)).convert("RGB" if channels == 3 else "L")
            u8, f32 = run(img, resize, crop, mean[:channels], std[:channels])
            assert u8.shape[:2] == (crop, crop) and f32.shape == (channels, crop, crop)
            u8.tofile(os.path.join(out, f"{name}.{cfg}.u8"))
            f32.astype("<f4").tofile(os.path.join(out, f"{name}.{cfg}.f32"))
            nums = " ".join(repr(float(v)) for v in (*mean, *std))
            lines.append(f"{name} {cfg} {channels} {resize} {crop} {nums}")
    tmp = os.path.join(out, "manifest.txt.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(out, "manifest.txt"))
    print(f"preprocess_ref: {len(files)} images x {len(CONFIGS)} configurations in {out}"
          f" ({'torchvision' if HAVE_TV else 'PIL + numpy'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
