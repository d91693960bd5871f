"""Photometric augmentation and image normalisation for training views.

Colour jitter is ``torchvision.transforms.ColorJitter(0.5, 0.5, 0.5, 0.1)`` on PIL images
(brightness, contrast, saturation factors uniform in [0.5, 1.5], hue shift uniform in
[-0.1, 0.1], the four applied in a random order) with the same PIL operations torchvision uses,
but its randomness comes from the numpy generator of the sample, so a sample is the same
whatever the worker, process count or resume point (torchvision would draw from the worker's
global torch RNG). Written with PIL alone: importing torchvision costs seconds per process.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageEnhance

BRIGHTNESS = CONTRAST = SATURATION = 0.5
HUE = 0.1


def color_jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Random brightness / contrast / saturation / hue, in a random order (PIL in, PIL out)."""
    order = rng.permutation(4)
    brightness = rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS)
    contrast = rng.uniform(1 - CONTRAST, 1 + CONTRAST)
    saturation = rng.uniform(1 - SATURATION, 1 + SATURATION)
    hue = rng.uniform(-HUE, HUE)
    for op in order:
        if op == 0:
            image = ImageEnhance.Brightness(image).enhance(brightness)
        elif op == 1:
            image = ImageEnhance.Contrast(image).enhance(contrast)
        elif op == 2:
            image = ImageEnhance.Color(image).enhance(saturation)
        else:
            image = adjust_hue(image, hue)
    return image


def adjust_hue(image: Image.Image, shift: float) -> Image.Image:
    """Rotate the hue of an RGB image by ``shift`` turns (in [-0.5, 0.5]), in PIL's 8-bit HSV."""
    h, s, v = image.convert("HSV").split()
    hue = np.asarray(h, dtype=np.uint8) + np.int32(shift * 255).astype(np.uint8)  # wraps around, as intended
    return Image.merge("HSV", (Image.fromarray(hue, "L"), s, v)).convert(image.mode)


def normalize_image(image: Image.Image) -> torch.Tensor:
    """PIL RGB → (3, H, W) float32 in [-1, 1]: ``(u8 / 255 - 0.5) / 0.5``."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy((array - 0.5) / 0.5).permute(2, 0, 1).contiguous()
