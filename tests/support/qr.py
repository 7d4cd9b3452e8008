"""Read QR codes out of pixels with a real decoder (zxing-cpp), as a phone or a door scanner does."""

import io
from pathlib import Path

import zxingcpp
from PIL import Image


def decoded(png: bytes | Path) -> set[str]:
    """The texts of every QR code a PNG image shows."""
    data = png.read_bytes() if isinstance(png, Path) else png
    with Image.open(io.BytesIO(data)) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    return {result.text for result in found if result.format == zxingcpp.BarcodeFormat.QRCode}
