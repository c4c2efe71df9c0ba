"""Real, decodable result images for apixo-sim, with the standard library only.

JPEG: a baseline (SOF0) YCbCr 4:4:4 encoder for images made of flat 8x8 blocks. A flat block
has only a DC coefficient, so every block is coded as one DC difference plus an end-of-block
code. A restart marker closes every MCU row, which resets the DC predictors and byte-aligns
the stream: rows with the same content are then byte-identical, so an image is a handful of
encoded rows repeated, and even 6240x2656 is produced in milliseconds.

PNG: 8-bit RGB, rows after the first of each band use the "Up" filter (all zero bytes), which
zlib compresses fast.

The picture: four horizontal bands, each a left-to-right gradient between two colours, in
steps of one 8x8 block. `variant` picks one of several palettes so the images of a task differ.
"""

import struct
import threading
import zlib
from collections import OrderedDict

# Four palettes x four bands x (left colour, right colour).
_PALETTES = [
    [((230, 57, 70), (255, 183, 3)), ((29, 53, 87), (69, 123, 157)),
     ((42, 157, 143), (233, 196, 106)), ((38, 70, 83), (244, 162, 97))],
    [((255, 0, 110), (131, 56, 236)), ((58, 134, 255), (255, 190, 11)),
     ((0, 0, 0), (255, 255, 255)), ((251, 86, 7), (58, 134, 255))],
    [((6, 214, 160), (17, 138, 178)), ((7, 59, 76), (255, 209, 102)),
     ((239, 71, 111), (6, 214, 160)), ((255, 255, 255), (0, 0, 0))],
    [((141, 153, 174), (237, 242, 244)), ((43, 45, 66), (239, 35, 60)),
     ((217, 4, 41), (141, 153, 174)), ((255, 0, 0), (0, 0, 255))],
]
BANDS = 4


def band_colours(width, height, variant):
    """The picture as data: (block_cols, block_rows, band_of_block_row, colours per band).

    colours[b][i] is the RGB colour of block column i in band b."""
    cols = (width + 7) // 8
    rows = (height + 7) // 8
    pal = _PALETTES[variant % len(_PALETTES)]
    colours = []
    for b in range(BANDS):
        (r0, g0, b0), (r1, g1, b1) = pal[b]
        band = []
        for i in range(cols):
            t = i / (cols - 1) if cols > 1 else 0.0
            band.append((round(r0 + (r1 - r0) * t), round(g0 + (g1 - g0) * t),
                         round(b0 + (b1 - b0) * t)))
        colours.append(band)
    band_of_row = [min(BANDS - 1, r * BANDS // rows) for r in range(rows)]
    return cols, rows, band_of_row, colours


# ---------------------------------------------------------------------------------------------
# JPEG

_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]   # ITU T.81 Annex K.3, luminance DC
_DC_VALS = list(range(12))
_AC_BITS = [1] + [0] * 15      # a one-symbol AC table: only end-of-block (0x00), code "0"
_AC_VALS = [0x00]
_DC_Q = 8                      # DC quantiser 8: the quantised DC equals (sample - 128)
_QTABLE = [_DC_Q] + [16] * 63  # AC entries are never used (every AC coefficient is zero)


def _huff_codes(bits, vals):
    codes = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def _build_dc_table():
    cat_codes = _huff_codes(_DC_BITS, _DC_VALS)
    table = {}
    for diff in range(-2047, 2048):
        mag = abs(diff)
        cat = mag.bit_length()
        hcode, hlen = cat_codes[cat]
        extra = diff if diff >= 0 else diff + (1 << cat) - 1
        table[diff] = ((hcode << cat) | extra, hlen + cat)
    return table


_DC_TABLE = _build_dc_table()
_EOB_CODE, _EOB_LEN = _huff_codes(_AC_BITS, _AC_VALS)[0x00]


def _ycc(rgb):
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def q(v):
        v = int(round(v))
        v = 0 if v < 0 else 255 if v > 255 else v
        return v - 128        # quantised DC with _DC_Q = 8: F(0,0) = 8 * (v - 128)
    return q(y), q(cb), q(cr)


def _encode_mcu_row(colours):
    """Entropy-coded bytes of one MCU row (predictors start at 0), padded with 1-bits."""
    out = bytearray()
    acc = 0
    nbits = 0
    p0 = p1 = p2 = 0
    dc = _DC_TABLE
    for rgb in colours:
        y, cb, cr = _ycc(rgb)
        for val, comp in ((y, 0), (cb, 1), (cr, 2)):
            if comp == 0:
                diff, p0 = val - p0, val
            elif comp == 1:
                diff, p1 = val - p1, val
            else:
                diff, p2 = val - p2, val
            code, length = dc[diff]
            acc = (((acc << length) | code) << _EOB_LEN) | _EOB_CODE
            nbits += length + _EOB_LEN
            while nbits >= 8:
                nbits -= 8
                byte = (acc >> nbits) & 0xFF
                out.append(byte)
                if byte == 0xFF:
                    out.append(0x00)          # byte stuffing
            acc &= (1 << nbits) - 1
    if nbits:
        pad = 8 - nbits
        byte = ((acc << pad) | ((1 << pad) - 1)) & 0xFF
        out.append(byte)
        if byte == 0xFF:
            out.append(0x00)
    return bytes(out)


def _segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def encode_jpeg(width, height, variant=0):
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise ValueError("JPEG size out of range")
    cols, rows, band_of_row, colours = band_colours(width, height, variant)
    if cols > 65535:
        raise ValueError("too many MCUs per row")
    row_bytes = [_encode_mcu_row(c) for c in colours]
    parts = [b"\xff\xd8",
             _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
             _segment(0xDB, bytes([0x00]) + bytes(_QTABLE)),
             _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3)
                      + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])),
             _segment(0xC4, bytes([0x00]) + bytes(_DC_BITS) + bytes(_DC_VALS)
                      + bytes([0x10]) + bytes(_AC_BITS) + bytes(_AC_VALS)),
             _segment(0xDD, struct.pack(">H", cols)),
             _segment(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))]
    rst = [bytes([0xFF, 0xD0 + i]) for i in range(8)]
    for r in range(rows):
        parts.append(row_bytes[band_of_row[r]])
        if r != rows - 1:
            parts.append(rst[r % 8])
    parts.append(b"\xff\xd9")
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# PNG

def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(width, height, variant=0):
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise ValueError("PNG size out of range")
    cols, rows, band_of_row, colours = band_colours(width, height, variant)
    band_rows = []
    for band in colours:
        row = bytearray(width * 3)
        for i, (r, g, b) in enumerate(band):
            x0 = i * 8
            x1 = min(width, x0 + 8)
            row[x0 * 3:x1 * 3] = bytes((r, g, b)) * (x1 - x0)
        band_rows.append(b"\x00" + bytes(row))      # filter None
    up_row = b"\x02" + bytes(width * 3)              # filter Up, identical to the row above
    comp = zlib.compressobj(6)
    out = []
    prev_band = -1
    for y in range(height):
        band = band_of_row[y // 8]
        if band != prev_band:
            out.append(comp.compress(band_rows[band]))
            prev_band = band
        else:
            out.append(comp.compress(up_row))
    out.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(out))
            + _chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------
# cache

class ImageCache:
    """LRU cache of encoded files keyed by (format, width, height, variant)."""

    def __init__(self, max_entries=48):
        self._max = max_entries
        self._lock = threading.Lock()
        self._items = OrderedDict()
        self._inflight = {}

    def get(self, fmt, width, height, variant):
        key = (fmt, width, height, variant % len(_PALETTES))
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                return data
            ev = self._inflight.get(key)
            owner = ev is None
            if owner:
                ev = self._inflight[key] = threading.Event()
        if not owner:
            ev.wait(60)
            with self._lock:
                data = self._items.get(key)
            if data is not None:
                return data
            return self._encode(key)
        try:
            data = self._encode(key)
            with self._lock:
                self._items[key] = data
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
            return data
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            ev.set()

    @staticmethod
    def _encode(key):
        fmt, width, height, variant = key
        if fmt == "png":
            return encode_png(width, height, variant)
        return encode_jpeg(width, height, variant)

    def clear(self):
        with self._lock:
            self._items.clear()
