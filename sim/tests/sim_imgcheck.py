"""Pure-python structural checks of JPEG and PNG files (no third-party decoder needed).

check_jpeg parses every marker segment of a baseline JPEG and, with decode=True, Huffman-decodes
the whole scan (DC and AC symbols, restart markers, byte stuffing) and reconstructs the colour of
each 8x8 block; it fails on anything a decoder would reject. check_png verifies chunk CRCs,
IHDR, the zlib stream and, with decode=True, undoes the row filters."""

import shutil
import struct
import subprocess
import tempfile
import zlib


class BitReader:
    """MSB-first bit reader over an entropy-coded segment: removes stuffed zero bytes and stops
    at the first marker, after which it feeds zero bits (counted, so over-reads are caught)."""

    def __init__(self, data, pos):
        self.data = data
        self.pos = pos
        self.acc = 0
        self.nbits = 0
        self.zeros = 0         # zero bits fed past a marker (always the low bits of acc)
        self.marker = None     # the marker that ended the data

    def _read_byte(self):
        b = self.data[self.pos]
        if b == 0xFF:
            nxt = self.data[self.pos + 1]
            if nxt != 0x00:
                self.marker = nxt
                return False
            self.pos += 2
        else:
            self.pos += 1
        self.acc = (self.acc << 8) | b
        self.nbits += 8
        return True

    def bits(self, n):
        if n == 0:
            return 0
        while self.nbits < n:
            if self.marker is None and self._read_byte():
                continue
            self.acc <<= 8
            self.nbits += 8
            self.zeros += 8
        self.nbits -= n
        assert self.nbits >= self.zeros, "read past the end of the entropy-coded data"
        v = (self.acc >> self.nbits) & ((1 << n) - 1)
        self.acc &= (1 << self.nbits) - 1
        return v

    def end_interval(self):
        """Check the padding (fewer than 8 one-bits), consume the marker, return its code."""
        while self.marker is None:
            self._read_byte()
            assert self.marker is not None or self.nbits - self.zeros < 8, \
                "data left over at the end of an interval"
        real = self.nbits - self.zeros
        assert real < 8, "data left over at the end of an interval"
        if real:
            assert (self.acc >> self.zeros) == (1 << real) - 1, "padding bits must be 1s"
        m = self.marker
        self.pos += 2
        self.acc = self.nbits = self.zeros = 0
        self.marker = None
        return m


def _huff_lookup(bits, vals):
    table = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            table[(length, code)] = vals[k]
            code += 1
            k += 1
        assert code < (1 << length) or k == len(vals) and code <= (1 << length), \
            "over-subscribed Huffman table"
        code <<= 1
    return table


def _decode_sym(br, table):
    code = 0
    for length in range(1, 17):
        code = (code << 1) | br.bits(1)
        v = table.get((length, code))
        if v is not None:
            return v
    raise AssertionError("invalid Huffman code")


def _extend(v, t):
    return v - (1 << t) + 1 if t and v < (1 << (t - 1)) else v


def check_jpeg(data, decode=True):
    """Returns dict(width, height, components, blocks) where blocks[c][row][col] is the
    dequantised DC sample value of component c (decode=True only)."""
    assert data[:2] == b"\xff\xd8", "no SOI"
    pos = 2
    qt = {}
    dc_tabs = {}
    ac_tabs = {}
    sof = None
    restart = 0
    seen = []
    while True:
        assert data[pos] == 0xFF, "expected a marker at offset %d" % pos
        marker = data[pos + 1]
        pos += 2
        if marker == 0xD9:
            raise AssertionError("EOI before SOS")
        length = struct.unpack(">H", data[pos:pos + 2])[0]
        seg = data[pos + 2:pos + length]
        assert len(seg) == length - 2, "truncated segment FF%02X" % marker
        pos += length
        seen.append(marker)
        if marker == 0xDB:
            i = 0
            while i < len(seg):
                pq, tq = seg[i] >> 4, seg[i] & 15
                assert pq == 0, "16-bit quant tables not expected"
                qt[tq] = list(seg[i + 1:i + 65])
                i += 65
        elif marker == 0xC4:
            i = 0
            while i < len(seg):
                tc, th = seg[i] >> 4, seg[i] & 15
                bits = list(seg[i + 1:i + 17])
                n = sum(bits)
                vals = list(seg[i + 17:i + 17 + n])
                assert len(vals) == n
                (dc_tabs if tc == 0 else ac_tabs)[th] = _huff_lookup(bits, vals)
                i += 17 + n
        elif marker == 0xC0:
            p, h, w, nf = struct.unpack(">BHHB", seg[:6])
            assert p == 8 and h > 0 and w > 0 and nf in (1, 3)
            comps = []
            for k in range(nf):
                cid, samp, tq = seg[6 + 3 * k:9 + 3 * k]
                assert samp == 0x11, "only 1x1 sampling is produced by apixo-sim"
                comps.append((cid, tq))
            sof = (w, h, comps)
        elif marker == 0xDD:
            restart = struct.unpack(">H", seg)[0]
        elif marker == 0xDA:
            break
        elif 0xC1 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise AssertionError("not baseline: SOF FF%02X" % marker)
    assert sof, "no SOF0"
    w, h, comps = sof
    ns = seg[0]
    assert ns == len(comps)
    scan = []
    for k in range(ns):
        cid, tabs = seg[1 + 2 * k], seg[2 + 2 * k]
        assert cid == comps[k][0]
        scan.append((tabs >> 4, tabs & 15, comps[k][1]))
    assert seg[1 + 2 * ns:] == bytes([0, 63, 0]), "Ss/Se/Ah/Al of a baseline scan"
    cols, rows = (w + 7) // 8, (h + 7) // 8
    total = cols * rows
    result = {"width": w, "height": h, "components": len(comps), "markers": seen}
    if not decode:
        # walk the entropy-coded segment: stuffing, RST sequence, then EOI at the very end
        rst_expected = 0
        i = pos
        n_rst = 0
        while True:
            j = data.index(b"\xff", i)
            nxt = data[j + 1]
            if nxt == 0x00:
                i = j + 2
                continue
            if 0xD0 <= nxt <= 0xD7:
                assert nxt - 0xD0 == rst_expected % 8, "RST out of sequence"
                rst_expected += 1
                n_rst += 1
                i = j + 2
                continue
            assert nxt == 0xD9, "unexpected marker FF%02X in scan" % nxt
            assert j + 2 == len(data), "bytes after EOI"
            break
        if restart:
            assert n_rst == (total + restart - 1) // restart - 1, "wrong number of RSTs"
        return result
    br = BitReader(data, pos)
    preds = [0] * ns
    blocks = [[[None] * cols for _ in range(rows)] for _ in range(ns)]
    rst_expected = 0
    for mcu in range(total):
        if restart and mcu and mcu % restart == 0:
            m = br.end_interval()
            assert m == 0xD0 + rst_expected % 8, "expected RST%d, got FF%02X" % (
                rst_expected % 8, m)
            rst_expected += 1
            preds = [0] * ns
        r, c = divmod(mcu, cols)
        for k, (td, ta, tq) in enumerate(scan):
            t = _decode_sym(br, dc_tabs[td])
            diff = _extend(br.bits(t), t)
            preds[k] += diff
            kk = 1
            while kk < 64:
                sym = _decode_sym(br, ac_tabs[ta])
                if sym == 0x00:
                    break
                if sym == 0xF0:
                    kk += 16
                    continue
                run, size = sym >> 4, sym & 15
                kk += run
                br.bits(size)
                raise AssertionError("non-zero AC coefficient: blocks are expected flat")
            dc = preds[k] * qt[tq][0]
            blocks[k][r][c] = max(0, min(255, int(round(dc / 8.0 + 128))))
    assert br.end_interval() == 0xD9, "scan must end with EOI"
    assert br.pos == len(data), "bytes after EOI"
    result["blocks"] = blocks
    return result


def ycc_to_rgb(y, cb, cr):
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return tuple(max(0, min(255, int(round(v)))) for v in (r, g, b))


def _chunks(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
    pos = 8
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert len(body) == n, "truncated chunk"
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "bad CRC in %r" % kind
        yield kind, body
        pos += 12 + n
    assert pos == len(data)


def check_png(data, decode=True):
    chunks = list(_chunks(data))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and ctype == 2 and comp == 0 and filt == 0 and inter == 0
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * 3
    assert len(raw) == h * (stride + 1), "wrong decompressed size"
    result = {"width": w, "height": h}
    if decode:
        rows = []
        prev = bytearray(stride)
        for y in range(h):
            f = raw[y * (stride + 1)]
            line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            assert f in (0, 1, 2, 3, 4)
            for i in range(stride):
                a = line[i - 3] if i >= 3 else 0
                b = prev[i]
                c = prev[i - 3] if i >= 3 else 0
                if f == 1:
                    line[i] = (line[i] + a) & 255
                elif f == 2:
                    line[i] = (line[i] + b) & 255
                elif f == 3:
                    line[i] = (line[i] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    line[i] = (line[i] + pr) & 255
            rows.append(bytes(line))
            prev = line
        result["rows"] = rows
    return result


def djpeg_dims(data):
    """(width, height) decoded by libjpeg's djpeg, or None when djpeg is not installed."""
    exe = shutil.which("djpeg")
    if not exe:
        return None
    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(data)
        f.flush()
        out = subprocess.run([exe, "-pnm", f.name], capture_output=True, timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr.decode(errors="replace")
    magic, w, h = out.stdout.split(None, 3)[:3]
    assert magic == b"P6"
    return int(w), int(h)
