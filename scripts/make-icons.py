#!/usr/bin/env python3
"""Draws Authdeck's icon (a key-hole on a rounded teal square) into icons/*.png.

Pure Python (zlib only), so the icons can be regenerated on any machine:
    python3 scripts/make-icons.py
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "icons")


def png(width, height, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 4:(y + 1) * width * 4]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def coverage(size, x, y):
    """Alpha of the background (rounded square) and of the key-hole at pixel (x, y)."""
    u, v = (x + 0.5) / size, (y + 0.5) / size
    r = 0.2
    dx, dy = max(abs(u - 0.5) - (0.5 - r), 0), max(abs(v - 0.5) - (0.5 - r), 0)
    bg = math.hypot(dx, dy) <= r - 0.02
    hole_circle = math.hypot(u - 0.5, v - 0.42) <= 0.14
    hole_stem = abs(u - 0.5) <= 0.06 + (v - 0.42) * 0.12 and 0.42 <= v <= 0.74
    return bg, hole_circle or hole_stem


def draw(size):
    pixels = bytearray(size * size * 4)
    samples = 4
    for y in range(size):
        for x in range(size):
            bg = hole = 0
            for sy in range(samples):
                for sx in range(samples):
                    b, h = coverage(size * samples, x * samples + sx, y * samples + sy)
                    bg += b
                    hole += b and h
            n = samples * samples
            a_bg, a_hole = bg / n, hole / n
            # teal background, white key-hole
            rgb = [int(15 + (255 - 15) * (a_hole / a_bg if a_bg else 0)),
                   int(118 + (255 - 118) * (a_hole / a_bg if a_bg else 0)),
                   int(110 + (255 - 110) * (a_hole / a_bg if a_bg else 0))]
            i = (y * size + x) * 4
            pixels[i:i + 4] = bytes(rgb + [int(255 * a_bg)])
    return png(size, size, pixels)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(draw(size))
        print("wrote icons/" + name)
