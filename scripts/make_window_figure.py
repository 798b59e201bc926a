"""docs/images/window_before_after.png: a 256x192 mosaic of twelve example cat faces with one hole,
inpainted by the shipped model with --window whole and --window auto (the default).

    python scripts/make_window_figure.py   # prints the mean absolute error in the hole of each
"""
import numpy as np
from pathlib import Path
from PIL import Image, ImageDraw
from maskgit import MaskGIT
from maskgit.image_io import load_image
files = sorted(Path("examples/catfaces").glob("*"))[:12]
tiles = [np.asarray(load_image(f)) for f in files]
mosaic = np.concatenate([np.concatenate(tiles[r*4:(r+1)*4], axis=1) for r in range(3)], axis=0)  # 192 x 256
hole = np.zeros(mosaic.shape[:2], bool)
yy, xx = np.mgrid[:192, :256]
hole |= ((yy - 96) ** 2 / 14**2 + (xx - 96) ** 2 / 22**2) < 1  # an eye-and-nose patch of the face at row 1, col 1
pipe = MaskGIT.from_pretrained("catface64")
import torch
masked = mosaic.copy(); masked[hole] = 128
out = {w: np.asarray(pipe.inpaint(mosaic, hole, generator=torch.Generator().manual_seed(0), window=w).images[0]) for w in ("whole", "auto")}
panels = [masked, out["whole"], out["auto"], mosaic]
labels = ["input (256x192, hole in gray)", "--window whole: 64x64 of the whole image", "--window auto (default): an 88x88 crop at 64x64", "ground truth"]
pad, top = 6, 16
canvas = Image.new("RGB", (4 * 256 + 5 * pad, 192 + top + pad), "white")
d = ImageDraw.Draw(canvas)
for i, (p, l) in enumerate(zip(panels, labels)):
    x = pad + i * (256 + pad)
    canvas.paste(Image.fromarray(p), (x, top)); d.text((x, 2), l, fill="black")
canvas.save("docs/images/window_before_after.png")
for w in out: 
    print(w, np.abs(out[w][hole].astype(int) - mosaic[hole]).mean())
