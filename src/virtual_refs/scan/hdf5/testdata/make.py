"""Writes the HDF5 fixtures of the chunk index, v2 B-tree and fractal heap tests, with the
expected answers taken from h5py (HDF5's own reading of the same files).

Usage (from the repository root):
    .venv/bin/python src/virtual_refs/scan/hdf5/testdata/make.py

Each chunk index fixture holds ONE chunked dataset `d` (so the test finds its index by the
index's signature): its chunk table is in `chunks.json` (chunk grid coordinates, address,
stored size, filter mask) with the dataset's geometry; see `record` for how HDF5 gives it.

`dense.json` lists the names of the links and attributes kept in fractal heaps.
Files ending in `.gz` are gzipped (large, mostly zeros); the tests inflate them.
"""
import gzip
import itertools
import json
import os
import sys

import h5py
import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__))
CHUNKS = {}
DENSE = {}


LATEST = (h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
# The new chunk indexes with the layout message of version 4 (HDF5 1.10 to 1.14), whose
# filtered entries size their chunk size field from the chunk's bytes; version 5 (HDF5 2.0,
# LATEST) gives that field the file's size of lengths.
V4 = (h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V114)


def new_file(name, sizes=None, libver=LATEST):
    """A file with the new indexes (fixed/extensible arrays, v2 B-trees, dense storage)."""
    path = os.path.join(OUT, name)
    if os.path.exists(path):
        os.remove(path)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(*libver)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    if sizes:
        fcpl.set_sizes(*sizes)
    fid = h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def record(name, f):
    """The chunk table of dataset `d` of the open file `f`, as HDF5 reads it.

    `chunk_iter` lists the chunks (address, size, filter mask); which grid position each one
    holds is what HDF5 reads there: `read_direct_chunk` of the position (HDF5's own index
    lookup, that of every read) must give the filter mask and the bytes stored at the
    chunk's address. HDF5's position lookup `get_chunk_info_by_coord` tells which chunk when
    several hold the same bytes. (HDF5 2.0 misreports positions, in `chunk_iter` and in
    `get_chunk_info_by_coord`, for extensible arrays whose unlimited dimension is not the
    first; so neither is taken on trust.)
    """
    d = f["d"]
    chunk = list(d.chunks)
    grid = [-(-n // c) for n, c in zip(d.shape, chunk)]
    raw = open(f.filename, "rb").read()
    listed = []
    d.id.chunk_iter(lambda i: listed.append((i.byte_offset, i.size, i.filter_mask)))
    assert len(listed) == d.id.get_num_chunks(), name
    by_bytes = {}
    for address, size, mask in listed:
        by_bytes.setdefault((raw[address:address + size], mask), []).append((address, size))
    entries = []
    for scaled in itertools.product(*(range(g) for g in grid)):
        offset = tuple(s * c for s, c in zip(scaled, chunk))
        try:
            mask, data = d.id.read_direct_chunk(offset)
        except (KeyError, RuntimeError, OSError, ValueError):
            continue  # never written
        candidates = by_bytes[(data, mask)]
        if len(candidates) > 1:
            said = d.id.get_chunk_info_by_coord(offset)
            candidates = [c for c in candidates if c[0] == said.byte_offset]
        [(address, size)] = candidates
        entries.append([list(scaled), address, size, mask])
    assert sorted(e[1] for e in entries) == sorted(c[0] for c in listed), name
    CHUNKS[name] = {
        "dims": list(d.shape),
        "max_dims": [m if m is not None else None for m in d.maxshape],
        "chunk": chunk,
        "element_size": d.dtype.itemsize,
        "filtered": d.compression is not None,
        "chunks": entries,
    }


def dataset(name, shape, maxshape, chunks, dtype, fill=None, sizes=None, gzip_level=None,
            raw=(), libver=LATEST):
    """A file holding dataset `d`; `fill(d)` writes it; `raw` are (offset, bytes, mask)
    chunks written directly (filters not applied where `mask` says so)."""
    with new_file(name, sizes, libver) as f:
        kw = {"compression": "gzip", "compression_opts": gzip_level} if gzip_level else {}
        d = f.create_dataset("d", shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype,
                             **kw)
        if fill:
            fill(d)
        for offset, data, mask in raw:
            d.id.write_direct_chunk(offset, data, filter_mask=mask)
    with h5py.File(os.path.join(OUT, name), "r") as f:
        record(name, f)


def gzipped(name):
    """Replaces `name` with `name.gz`; its chunk table (large) goes to `name.json.gz`."""
    path = os.path.join(OUT, name)
    with open(path, "rb") as src, gzip.GzipFile(path + ".gz", "wb", mtime=0) as dst:
        dst.write(src.read())
    os.remove(path)
    if name in CHUNKS:
        with gzip.GzipFile(path + ".json.gz", "wb", mtime=0) as out:
            out.write(json.dumps(CHUNKS.pop(name), separators=(",", ":")).encode())
    if name in DENSE:
        DENSE[name + ".gz"] = DENSE.pop(name)


def ramp(n, dtype):
    return (np.arange(n) % 251 + 1).astype(dtype)


def fill_all(d):
    d[...] = ramp(int(np.prod(d.shape)), d.dtype).reshape(d.shape)


# ---- Fixed arrays (no unlimited dimension) ---------------------------------------------------
dataset("fa_plain.h5", (20, 30), None, (3, 4), "i2", fill_all)


def fa_sparse(d):
    d[0:4, 0:5] = 1
    d[4:8, 10:12] = 2
    d[8:10, 5:10] = 3


# Maximum dimensions larger than the current ones: the array covers the maximum grid (4 x 4).
dataset("fa_sparse_max.h5", (10, 12), (16, 20), (4, 5), "u1", fa_sparse)


def fa_filtered(d):
    d[0:8, :] = 7
    d[20:28, 0:3] = np.arange(24).reshape(8, 3)


# Chunks of 48 bytes (2-byte size fields), some unwritten, two stored unfiltered (mask 1).
dataset("fa_filtered.h5", (40, 9), None, (4, 3), "i4", fa_filtered, gzip_level=4,
        raw=[((36, 6), bytes(48), 1), ((12, 3), bytes(range(48)), 1)])
# Layout version 5: 8-byte size fields, or 4-byte ones in a file of 4-byte lengths.
dataset("fa_filtered_len4.h5", (40, 9), None, (4, 3), "i4", fa_filtered, sizes=(8, 4),
        gzip_level=4)
# Layout version 4: chunks of 48 and 255 bytes (2-byte size fields), of 256 bytes (3-byte
# size fields) and of 65536 bytes (4-byte size fields).
dataset("fa_filtered_v4.h5", (40, 9), None, (4, 3), "i4", fa_filtered, gzip_level=4,
        raw=[((36, 6), bytes(48), 1)], libver=V4)
dataset("fa_filtered_255_v4.h5", (40, 40), None, (15, 17), "u1", fill_all, gzip_level=4,
        libver=V4)
dataset("fa_filtered_256_v4.h5", (40, 40), None, (16, 16), "u1", fill_all, gzip_level=4,
        libver=V4)
dataset("fa_filtered_64k_v4.h5", (300, 512), None, (256, 256), "u1", fill_all, gzip_level=9,
        libver=V4)


def fa_paged(d):
    for i in (5, 7, 2090):
        d[i] = i % 200 + 1


# 2100 chunks: three pages of at most 1024 entries, the middle one never written.
dataset("fa_paged.h5", (2100,), None, (1,), "u1", fa_paged)


def fa_paged_filtered(d):
    for i in (1, 1027):
        d[i] = 9


dataset("fa_paged_filtered.h5", (1030,), None, (1,), "u1", fa_paged_filtered, gzip_level=1)

# ---- Extensible arrays (one unlimited dimension) ---------------------------------------------
# 300 chunks: the index block's own entries, its data blocks, and a super block's data block.
dataset("ea_1d.h5", (300,), (None,), (1,), "u1", fill_all)
dataset("ea_2d_unlim0.h5", (9, 7), (None, 7), (2, 3), "i4", fill_all)
dataset("ea_2d_unlim1.h5", (7, 9), (7, None), (3, 2), "i4", fill_all)


def ea_3d(d):
    # Every chunk's bytes differ (make the table from what HDF5 reads, see `record`).
    d[0:2, :, :] = ramp(60, "u2").reshape(2, 5, 6)
    d[2:4, 4:5, 0:4] = ramp(8, "u2").reshape(2, 1, 4) + 100


# The unlimited dimension in the middle, and a first dimension whose maximum (4 chunks) exceeds
# its current extent (2 chunks): the linear index skips the missing rows.
dataset("ea_3d.h5", (4, 5, 6), (8, None, 6), (2, 2, 4), "u2", ea_3d)


def ea_sparse(d):
    for i in (3, 100, 299, 350):
        d[i] = 1


dataset("ea_sparse.h5", (400,), (None,), (1,), "u1", ea_sparse)


def ea_filtered(d):
    d[0:40] = 5
    d[100:110] = np.arange(10)


# 4-byte addresses, filtered entries, direct chunks with filter masks.
dataset("ea_filtered_addr4.h5", (120,), (None,), (5,), "i8", ea_filtered, sizes=(4, 8),
        gzip_level=4, raw=[((60,), bytes(40), 1), ((115,), bytes(40), 1)])


dataset("ea_filtered_v4.h5", (120,), (None,), (5,), "i8", ea_filtered, gzip_level=4,
        raw=[((60,), bytes(40), 1)], libver=V4)


def ea_paged(d):
    d[134200] = 1


# Index 134200 lies in super block 13, whose data blocks have 2048 entries in two pages:
# only the second page of the super block's second data block exists (page bit 3).
dataset("ea_paged.h5", (134300,), (None,), (1,), "u1", ea_paged)

# ---- Version 2 B-trees of chunks (several unlimited dimensions) ------------------------------
dataset("bt_2d.h5", (13, 13), (None, None), (1, 1), "u1", fill_all)


def bt_filtered(d):
    d[0:6, 0:10] = 3
    d[9:10, 10:12] = 4


dataset("bt_filtered.h5", (10, 12), (None, None), (3, 5), "i2", bt_filtered, gzip_level=4,
        raw=[((3, 10), bytes(30), 1)])


dataset("bt_filtered_v4.h5", (10, 12), (None, None), (3, 5), "i2", bt_filtered, gzip_level=4,
        raw=[((3, 10), bytes(30), 1)], libver=V4)


def bt_3d(d):
    d[0:2, 0:3, 0:2] = 1
    d[2:4, 3:6, 4:5] = 2


dataset("bt_3d.h5", (4, 6, 5), (None, None, 10), (2, 3, 2), "u1", bt_3d)
# A tree of depth 2 (over 5,300 records of 24 bytes in nodes of 2048 bytes).
dataset("bt_deep.h5", (80, 80), (None, None), (1, 1), "u1", fill_all)
gzipped("bt_deep.h5")

# ---- Dense links and attributes: fractal heaps and their name indexes ------------------------
with new_file("dense_links.h5") as f:
    for i in range(300):
        f[f"link{i:03d}"] = h5py.SoftLink(f"/target/{i}")
with h5py.File(os.path.join(OUT, "dense_links.h5"), "r") as f:
    DENSE["dense_links.h5"] = {"links": sorted(f.keys())}

with new_file("dense_attrs.h5") as f:
    g = f.create_group("g")
    for i in range(600):
        g.attrs[f"a{i:03d}"] = np.uint8(i % 256)
    # Over the heap's 4096-byte limit for managed objects: a huge object.
    g.attrs["huge"] = np.arange(1500, dtype="i4")
with h5py.File(os.path.join(OUT, "dense_attrs.h5"), "r") as f:
    DENSE["dense_attrs.h5"] = {"attributes": sorted(f["g"].attrs.keys())}
gzipped("dense_attrs.h5")

# A heap over 512 KiB: its root indirect block has child indirect blocks.
with new_file("dense_big.h5") as f:
    g = f.create_group("g")
    for i in range(160):
        g.attrs[f"big{i:03d}"] = np.zeros(3900, dtype="u1")
with h5py.File(os.path.join(OUT, "dense_big.h5"), "r") as f:
    DENSE["dense_big.h5"] = {"attributes": sorted(f["g"].attrs.keys())}
gzipped("dense_big.h5")

with open(os.path.join(OUT, "chunks.json"), "w") as out:
    # One line a chunk: readable, and diffs stay small.
    out.write("{\n")
    for i, (name, table) in enumerate(sorted(CHUNKS.items())):
        entries = table.pop("chunks")
        out.write(f" {json.dumps(name)}: {json.dumps(table, sort_keys=True)[:-1]}, \"chunks\": [\n")
        out.write(",\n".join("  " + json.dumps(e) for e in entries))
        out.write("\n ]}" + ("," if i + 1 < len(CHUNKS) else "") + "\n")
    out.write("}")
    out.write("\n")
with open(os.path.join(OUT, "dense.json"), "w") as out:
    json.dump(DENSE, out, indent=1, sort_keys=True)
    out.write("\n")
for name in sorted(os.listdir(OUT)):
    print(f"{os.path.getsize(os.path.join(OUT, name)):>8} {name}", file=sys.stderr)
