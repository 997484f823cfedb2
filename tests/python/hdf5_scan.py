"""HDF5 and netCDF-4 files for floe's native HDF5 scanner (`floe import netcdf` / `hdf5`),
and the comparisons tests/hdf5_scan.rs runs.

    python hdf5_scan.py make DIR
        Writes the corpus (netCDF4-python and h5py files, each small, chunk lengths that do not
        divide the dimensions, NaN in float data, fill values) and DIR/manifest.json:

        {"files": [{"name", "path", "kind": "netcdf4" | "h5py", "superblock", "import" (false
                    for the daily files, imported together only),
                    "groups": [group paths, "" the root],
                    "datasets": {path: {"dtype", "shape", "chunks" (null unless chunked),
                                        "layout": "chunked" | "contiguous" | "compact",
                                        "index" (chunked: h5py's chunk index type),
                                        "filters": [filter ids], "dont_filter_partial",
                                        "chunk_table": [[chunk offset, byte offset, size,
                                                         filter mask], ...] (chunked),
                                        "contiguous": [byte offset, storage size] or null,
                                        "dims": netCDF's dimension names or null,
                                        "dimension_only": bool}}}, ...],
         "daily": {"files": [...], "order": [the order given to floe], "append_dim": "time"},
         "notes": [cases the API cannot make here]}

        and checks that every case was made (superblock versions, chunk index types through
        H5Dget_chunk_index_type, non-zero filter masks, dense storage, paged fixed arrays).

    python hdf5_scan.py refs DIR
        For every file, compares floe's references (`<file>.floe.json`, from `floe import
        netcdf --dry-run --emit-kerchunk`) with the manifest and with h5py/netCDF4: every byte
        range equals h5py's chunk table at those grid coordinates (the Fletcher32 checksum left
        out); compact data, unfiltered chunks (non-zero filter mask, or partial edge chunks of
        a dataset with H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) and variable-length strings are
        inline and decode to h5py's values; no other key; shape, dtype, chunks, fill value,
        filters, attributes and dimension names as h5py/netCDF4 see them. Prints
        `refs ok NAME` or `refs FAIL NAME: why` per file; exits 0 unless the script breaks.

    python hdf5_scan.py compare SERVER_URL DIR IMPORTED_JSON
        IMPORTED_JSON lists the names imported to branch main. netCDF-4 files: every group of
        `SERVER_URL/main/NAME` through `xarray.open_zarr` is identical to `xarray.open_dataset`
        of the file (with `group=`); h5py files: every dataset read through zarr equals h5py's
        `ds[()]` bit for bit; `daily` equals `xarray.open_mfdataset` of the 30 files. Prints
        `ok NAME[/GROUP]` or `FAIL NAME...: why`; exits 0 unless the script breaks.
"""

import base64
import ctypes
import glob
import json
import os
import re
import sys
import traceback
import warnings

import h5py
import netCDF4
import numcodecs
import numpy as np
import xarray as xr
import zarr

FILTER_NAMES = {1: "zlib", 2: "shuffle", 3: "fletcher32", 32001: "blosc", 32015: "zstd"}
INDEX_NAMES = {0: "btree1", 1: "single", 2: "implicit", 3: "fixed_array",
               4: "extensible_array", 5: "btree2"}
# What floe hides (spec/virtual.md §7 rule 6); netCDF4-python's view never shows them.
HIDDEN = {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS",
          "_Netcdf4Dimid", "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties",
          "_SuperblockVersion", "_IsNetcdf4"}
NC_DIMENSION_ONLY = "This is a netCDF dimension but not a netCDF variable"
DONT_FILTER_PARTIAL_CHUNKS = 0x0002


# ----------------------------------------------------------------------------------------
# The HDF5 library h5py runs on, through ctypes, for what h5py does not wrap:
# H5Pset_chunk_opts / H5Pget_chunk_opts, H5Dget_chunk_index_type, H5Pset_istore_k.


def _hdf5():
    """h5py's own libhdf5 (already loaded, so h5py's identifiers are valid in it), or None.
    netCDF4 loads a copy of its own: the one that knows h5py's identifiers is chosen."""
    paths = glob.glob(os.path.join(os.path.dirname(h5py.__file__), "..", "h5py.libs",
                                   "libhdf5-*.so*"))
    if os.path.exists("/proc/self/maps"):
        maps = open("/proc/self/maps").read()
        paths += re.findall(r"\S*/libhdf5[-.][^/\s]*\.so[^/\s]*", maps)
    probe = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    for path in paths:
        if "_hl" in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.H5Iis_valid.argtypes = [ctypes.c_int64]
            lib.H5Pset_chunk_opts.argtypes = [ctypes.c_int64, ctypes.c_uint]
            lib.H5Pget_chunk_opts.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint)]
            lib.H5Dget_chunk_index_type.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int)]
            lib.H5Pset_istore_k.argtypes = [ctypes.c_int64, ctypes.c_uint]
        except (OSError, AttributeError):
            continue
        if lib.H5Iis_valid(probe.id) > 0:
            return lib
    return None


HDF5 = _hdf5()


def chunk_index_type(ds):
    if HDF5 is None:
        return None
    value = ctypes.c_int(-1)
    if HDF5.H5Dget_chunk_index_type(ds.id.id, ctypes.byref(value)) < 0:
        return None
    return INDEX_NAMES.get(value.value, value.value)


def dont_filter_partial(dcpl):
    if HDF5 is None:
        return False
    opts = ctypes.c_uint(0)
    HDF5.H5Pget_chunk_opts(dcpl.id, ctypes.byref(opts))
    return bool(opts.value & DONT_FILTER_PARTIAL_CHUNKS)


# ----------------------------------------------------------------------------------------
# netCDF4-python files


def field(seed, shape, dtype="f4"):
    data = np.random.default_rng(seed).normal(280.0, 8.0, size=shape).astype(dtype)
    data.flat[::7] = np.nan
    return data


def all_kinds_of_attributes(obj, prefix):
    """More than ten attributes of every numeric type, text (NC_CHAR) and NC_STRING."""
    obj.setncattr(f"{prefix}_i1", np.int8(-8))
    obj.setncattr(f"{prefix}_u1", np.uint8(200))
    obj.setncattr(f"{prefix}_i2", np.int16(-300))
    obj.setncattr(f"{prefix}_u2", np.uint16(60000))
    obj.setncattr(f"{prefix}_i4", np.int32(-70000))
    obj.setncattr(f"{prefix}_u4", np.uint32(4_000_000_000))
    obj.setncattr(f"{prefix}_i8", np.int64(-(2**40)))
    obj.setncattr(f"{prefix}_u8", np.uint64(2**63 + 5))
    obj.setncattr(f"{prefix}_f4", np.float32(0.1))
    obj.setncattr(f"{prefix}_f8", np.float64(-1e300))
    obj.setncattr(f"{prefix}_ints", np.array([1, 2, 3], dtype="i4"))
    obj.setncattr(f"{prefix}_floats", np.array([0.5, -2.25], dtype="f8"))
    obj.setncattr(f"{prefix}_text", "température, °C")
    obj.setncattr_string(f"{prefix}_string", "an NC_STRING")
    obj.setncattr_string(f"{prefix}_strings", ["one", "two", "three"])


def nc4_groups(path):
    """NETCDF4: groups two levels deep, an unlimited `time` (10 steps), zlib+shuffle 2-D and
    3-D variables, fletcher32, big-endian, variable-length and fixed char strings, packing,
    _FillValue with masked values and with chunks never written, CF times, a scalar, a
    contiguous variable, a dimension without coordinate variable (`nv`)."""
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    all_kinds_of_attributes(ds, "g")
    ds.title = "floe HDF5 scanner corpus"
    ds.createDimension("time", None)
    ds.createDimension("lat", 7)
    ds.createDimension("lon", 9)
    ds.createDimension("level", 4)
    ds.createDimension("nv", 2)
    ds.createDimension("nchar", 6)
    nt = 10
    t = ds.createVariable("time", "f8", ("time",), chunksizes=(4,))
    t.units = "hours since 2026-01-01 00:00:00"
    t.calendar = "standard"
    t.standard_name = "time"
    t[:] = np.arange(nt) * 6.0
    lat = ds.createVariable("lat", "f4", ("lat",))
    lat.units = "degrees_north"
    lat[:] = np.linspace(-30, 30, 7)
    lon = ds.createVariable("lon", "f8", ("lon",), contiguous=True)
    lon.units = "degrees_east"
    lon[:] = np.linspace(0, 80, 9)
    level = ds.createVariable("level", "i4", ("level",))
    level[:] = [1000, 850, 500, 250]
    t2m = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                            chunksizes=(4, 3, 4), fill_value=np.float32(-9999.0))
    all_kinds_of_attributes(t2m, "v")
    t2m.long_name = "2 metre temperature"
    t2m.valid_range = np.array([150, 350], dtype="f4")
    data = field(1, (nt, 7, 9))
    t2m[:] = np.ma.masked_array(data, mask=(np.arange(data.size) % 11 == 0).reshape(data.shape))
    ta = ds.createVariable("ta", "f8", ("time", "level", "lat", "lon"), zlib=True,
                           complevel=9, shuffle=True, chunksizes=(3, 3, 4, 5))
    ta[:] = field(2, (nt, 4, 7, 9), "f8")
    orog = ds.createVariable("orog", "f4", ("lat", "lon"), zlib=True, chunksizes=(5, 4))
    orog[:] = field(3, (7, 9))
    packed = ds.createVariable("packed", "i2", ("time", "lat", "lon"), zlib=True,
                               chunksizes=(3, 7, 9), fill_value=np.int16(-32767))
    packed.scale_factor = 0.01
    packed.add_offset = 273.15
    packed.set_auto_maskandscale(False)
    raw = np.round((field(4, (nt, 7, 9), "f8") - 273.15) / 0.01)
    packed[:] = np.where(np.isnan(raw), -32767, raw).astype("i2")
    checked = ds.createVariable("checked", "f8", ("time", "lat"), fletcher32=True,
                                chunksizes=(4, 5))
    checked[:] = field(5, (nt, 7), "f8")
    big = ds.createVariable("big", np.dtype(">i4"), ("lat", "lon"), zlib=True, shuffle=True,
                            chunksizes=(4, 4), endian="big")
    big[:] = np.arange(63).reshape(7, 9) - 30
    be_contig = ds.createVariable("be_contig", np.dtype(">f8"), ("level",), endian="big",
                                  contiguous=True)
    be_contig[:] = [1.5, np.nan, -2.5, 1e10]
    names = ds.createVariable("names", str, ("lat",))
    names[:] = np.array(["Oslo", "", "Zürich", "a much longer name", "x", "y", "z"],
                        dtype=object)
    notes = ds.createVariable("notes", str, ("time",), chunksizes=(3,))
    notes[:] = np.array([f"step {i}" * (i % 3) for i in range(nt)], dtype=object)
    code = ds.createVariable("code", "S1", ("lat", "nchar"))
    code[:] = netCDF4.stringtochar(np.array(["ab", "cde", "f", "", "ghijkl", "m", "no"],
                                            dtype="S6"))
    crs = ds.createVariable("crs", "i4", ())
    crs.grid_mapping_name = "latitude_longitude"
    crs[...] = 7
    bnds = ds.createVariable("time_bnds", "f8", ("time", "nv"))
    bnds[:] = np.stack([np.arange(nt) * 6.0 - 3, np.arange(nt) * 6.0 + 3], axis=1)
    t.bounds = "time_bnds"
    partial = ds.createVariable("partial", "f4", ("lat", "lon"), chunksizes=(3, 4),
                                fill_value=np.float32(-1.0))
    partial[0:3, 0:4] = field(6, (3, 4))  # the other chunks are never written

    obs = ds.createGroup("obs")
    all_kinds_of_attributes(obs, "obs")
    obs.createDimension("station", 5)
    sid = obs.createVariable("station", "i4", ("station",))
    sid[:] = [11, 12, 13, 15, 19]
    temp = obs.createVariable("temp", "f4", ("time", "station"), zlib=True, shuffle=True,
                              chunksizes=(3, 2), fill_value=np.float32(np.nan))
    temp.units = "K"
    temp[:] = field(7, (nt, 5))
    detail = obs.createGroup("detail")
    detail.purpose = "second level"
    detail.createDimension("sample", 11)
    value = detail.createVariable("value", "u2", ("sample",), zlib=True, chunksizes=(4,),
                                  fill_value=np.uint16(65535))
    value[:] = np.ma.masked_array(np.arange(11) * 1000, mask=np.arange(11) % 4 == 1)
    flags = detail.createVariable("flags", "u1", ("time", "sample"), chunksizes=(4, 4))
    flags[:] = (np.arange(nt * 11) % 256).reshape(nt, 11)
    count = detail.createVariable("count", "u8", ())
    count[...] = 2**63 + 1
    ds.close()


def nc4_classic(path):
    """NETCDF4_CLASSIC: only classic types, float32 packing, no groups or strings."""
    ds = netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC")
    ds.title = "classic model in HDF5"
    ds.version = np.int32(4)
    ds.createDimension("time", None)
    ds.createDimension("y", 5)
    ds.createDimension("x", 7)
    ds.createDimension("nchar", 3)
    t = ds.createVariable("time", "i4", ("time",))
    t.units = "days since 2000-01-01"
    t[:] = [0, 1, 2, 5, 9]
    x = ds.createVariable("x", "f8", ("x",))
    x[:] = np.arange(7) * 0.5
    temp = ds.createVariable("temp", "f4", ("time", "y", "x"), zlib=True, shuffle=True,
                             chunksizes=(2, 3, 4), fill_value=np.float32(1e20))
    temp[:] = np.ma.masked_invalid(field(8, (5, 5, 7)))
    p = ds.createVariable("p", "i2", ("time", "y", "x"), zlib=True, chunksizes=(5, 2, 7),
                          fill_value=np.int16(-1))
    p.scale_factor = np.float32(0.5)
    p.add_offset = np.float32(1000)
    p[:] = np.linspace(900, 1100, 175).reshape(5, 5, 7)
    flag = ds.createVariable("flag", "i1", ("time",))
    flag[:] = [0, 1, 0, 1, 1]
    letters = ds.createVariable("letters", "S1", ("y", "nchar"))
    letters[:] = netCDF4.stringtochar(np.array(["a", "bc", "def", "", "g"], dtype="S3"))
    scalar = ds.createVariable("scalar", "f8", ())
    scalar[...] = np.pi
    cont = ds.createVariable("cont", "f8", ("y", "x"), contiguous=True)
    cont[:] = field(9, (5, 7), "f8")
    ds.close()


def nc4_ragged(path):
    """A variable written along the unlimited dimension for fewer steps than another: its
    HDF5 dataset is shorter than the dimension (netCDF reads the rest as _FillValue)."""
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.createDimension("time", None)
    ds.createDimension("x", 5)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = "days since 2000-01-01"
    t[:] = np.arange(6)
    short = ds.createVariable("short", "f4", ("time", "x"), chunksizes=(2, 3),
                              fill_value=np.float32(-1))
    short[0:3] = field(10, (3, 5))
    full = ds.createVariable("full", "f4", ("time", "x"), chunksizes=(2, 3))
    full[:] = field(11, (6, 5))
    ds.close()


def daily(d, i):
    """Day i: 1-3 steps of 6 hours in per-file units, t2m in time chunks of 2 (so most files
    end in a partial chunk), packed precipitation, a constant elevation, a scalar."""
    path = f"{d}/day_{i:02d}.nc"
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.title = "daily"
    ds.createDimension("time", None)
    ds.createDimension("lat", 6)
    ds.createDimension("lon", 7)
    steps = 1 + i % 3
    t = ds.createVariable("time", "f8", ("time",))
    t.units = f"hours since 2026-01-{i + 1:02d}"
    t.calendar = "standard"
    t[:] = np.arange(steps) * 6.0
    lat = ds.createVariable("lat", "f4", ("lat",))
    lat[:] = np.linspace(40, 65, 6)
    lon = ds.createVariable("lon", "f4", ("lon",))
    lon[:] = np.linspace(-10, 20, 7)
    t2m = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                            chunksizes=(2, 4, 5), fill_value=np.float32(-9999))
    t2m.units = "K"
    t2m[:] = np.ma.masked_invalid(field(100 + i, (steps, 6, 7)))
    precip = ds.createVariable("precip", "i2", ("time", "lat", "lon"), zlib=True,
                               chunksizes=(1, 6, 7), fill_value=np.int16(-1))
    precip.scale_factor = 0.1
    precip.add_offset = 0.0
    rain = np.abs(field(200 + i, (steps, 6, 7), "f8") - 280)
    precip[:] = np.ma.masked_array(np.nan_to_num(rain), mask=np.isnan(rain))
    elev = ds.createVariable("elev", "f4", ("lat", "lon"), zlib=True, chunksizes=(4, 4))
    elev[:] = field(0, (6, 7))
    crs = ds.createVariable("crs", "i4", ())
    crs.grid_mapping_name = "latitude_longitude"
    crs[...] = 0
    ds.close()
    return path


# ----------------------------------------------------------------------------------------
# h5py files


def h5_attributes(obj, count=12):
    """`count` attributes of every type h5py writes (dense storage beyond 8 with libver
    v108 and later)."""
    values = [np.int8(-1), np.uint8(255), np.int16(-2), np.uint16(65000), np.int32(-3),
              np.uint32(4e9), np.int64(-(2**50)), np.uint64(2**64 - 1), np.float16(0.5),
              np.float32(0.1), np.float64(np.nan), np.float64(-np.inf),
              np.array([1, 2, 3], dtype="i2"), np.array([1.5, np.nan], dtype=">f8"),
              np.bytes_(b"fixed bytes"), "variable-length text",
              np.array([b"ab", b"cde"], dtype="S3"), np.array([7], dtype="u4")]
    for i in range(count):
        obj.attrs[f"attr_{i:02d}"] = values[i % len(values)]


def compact(group, name, data):
    """A compact dataset (its data inside its object header), through the low-level API."""
    space = h5py.h5s.create_simple(data.shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    tid = h5py.h5t.py_create(data.dtype)
    h5py.h5d.create(group.id, name.encode(), tid, space, dcpl).write(
        h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))


def low_level_chunked(group, name, data, chunks, *, gzip=False, shuffle=False,
                      early=False, dont_filter_partial=False, maxshape=None):
    """A chunked dataset through the low-level API: early allocation (the implicit index
    when unfiltered with a fixed maximum shape) or H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS."""
    maxshape = tuple(h5py.h5s.UNLIMITED if m is None else m for m in maxshape or data.shape)
    space = h5py.h5s.create_simple(data.shape, maxshape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    if shuffle:
        dcpl.set_shuffle()
    if gzip:
        dcpl.set_deflate(6)
    if early:
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    if dont_filter_partial:
        if HDF5 is None or HDF5.H5Pset_chunk_opts(dcpl.id, DONT_FILTER_PARTIAL_CHUNKS) < 0:
            return False
    tid = h5py.h5t.py_create(data.dtype)
    h5py.h5d.create(group.id, name.encode(), tid, space, dcpl).write(
        h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))
    return True


def masked_chunks(group, name):
    """gzip+shuffle chunks written with write_direct_chunk and a non-zero filter mask: one
    with only the shuffle applied (mask 0b10: deflate skipped), one raw (mask 0b11)."""
    ds = group.create_dataset(name, shape=(7, 5), dtype="i4", chunks=(3, 3),
                              compression="gzip", shuffle=True, maxshape=(7, 5))
    ds[...] = np.arange(35).reshape(7, 5)
    block = (np.arange(9, dtype="<i4").reshape(3, 3) + 1000)
    ds.id.write_direct_chunk((3, 0), bytes(numcodecs.Shuffle(4).encode(block.tobytes())),
                             filter_mask=0b10)
    ds.id.write_direct_chunk((0, 3), (block + 1000).tobytes(), filter_mask=0b11)


def scales(group, prefix=""):
    """Dimension scales `y` (5) and `x` (7) attached to `scaled`; `phony` (5, 7) and
    `phony_1d` (11) have none (netCDF names them phony_dim_N or reuses `x`/`y`)."""
    y = group.create_dataset(prefix + "y", data=np.arange(5) * 10.0)
    y.make_scale("y")
    x = group.create_dataset(prefix + "x", data=np.arange(7, dtype="i4"))
    x.make_scale("x")
    s = group.create_dataset(prefix + "scaled", data=field(20, (5, 7)), chunks=(2, 3),
                             compression="gzip")
    s.dims[0].attach_scale(y)
    s.dims[1].attach_scale(x)
    group.create_dataset(prefix + "phony", data=np.arange(35, dtype="u2").reshape(5, 7))
    group.create_dataset(prefix + "phony_1d", data=field(21, (11,), "f8"))


def typed(group, compression=None):
    """Integers i1..u8 in both byte orders, f2, f4, f8: every other one chunked."""
    for n, code in enumerate(["i1", "u1", "<i2", ">u2", "<i4", ">i4", "<u4", ">i8", "<u8",
                              "<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]):
        dt = np.dtype(code)
        if dt.kind == "f":
            data = field(30 + n, (5, 7), dt)
        else:
            info = np.iinfo(dt)
            data = np.random.default_rng(n).integers(info.min, info.max, size=(5, 7),
                                                     dtype=dt.newbyteorder("="),
                                                     endpoint=True).astype(dt)
            data[0, :2] = [info.min, info.max]
        name = f"{dt.kind}{dt.itemsize}_{'be' if dt.byteorder == '>' else 'le'}"
        if n % 2:
            group.create_dataset(name, data=data)
        else:
            group.create_dataset(name, data=data, chunks=(2, 3), compression=compression)


def strings(group):
    group.create_dataset("fixed", data=np.array([b"alpha", b"be", b"", b"gamma!!"], "S7"),
                         chunks=(3,))
    group.create_dataset("fixed_contiguous", data=np.array([b"x", b"yz"], "S4"))
    vlen = h5py.string_dtype()
    group.create_dataset("vlen", data=np.array(["one", "", "thrée", "four"], dtype=object),
                         dtype=vlen)
    group.create_dataset("vlen_chunked", data=np.array([f"s{i}" * i for i in range(7)],
                                                       dtype=object),
                         dtype=vlen, chunks=(3,))


def fills(group):
    """Chunks never written: with the default HDF5 fill (0) and with fillvalue=-7."""
    zero = group.create_dataset("unwritten_zero", shape=(6, 6), dtype="i4", chunks=(4, 4))
    zero[0:4, 0:4] = np.arange(16).reshape(4, 4)
    seven = group.create_dataset("unwritten_fill", shape=(10,), dtype="f4", chunks=(3,),
                                 fillvalue=-7.0, compression="gzip")
    seven[0:3] = [1.0, np.nan, 3.0]
    group.create_dataset("fill_written", data=field(22, (5,)), chunks=(2,), fillvalue=-7.0)
    group.create_dataset("contiguous_unwritten", shape=(4,), dtype="i2")


def h5_earliest(path):
    """libver earliest: superblock 0, version 1 object headers, symbol-table groups, the
    version 1 B-tree chunk index."""
    with h5py.File(path, "w", libver="earliest") as f:
        h5_attributes(f, 14)
        typed(f.create_group("types"), "gzip")
        strings(f.create_group("strings"))
        fills(f.create_group("fill"))
        scales(f)
        compact(f, "compact", np.arange(12, dtype=">i2").reshape(4, 3))
        f.create_dataset("checked", data=field(23, (11, 3)), chunks=(4, 2), fletcher32=True,
                         shuffle=True, compression="gzip")
        f.create_dataset("scalar", data=np.float64(-0.0))
        f.create_dataset("big_contiguous", data=field(24, (6, 5), ">f8"))
        leaf = f.create_group("a/b/c").create_dataset("leaf", data=np.arange(9, dtype="i8"),
                                                      chunks=(4,))
        h5_attributes(leaf, 11)


def h5_superblock1(path):
    """Superblock 1: libver earliest with a non-default indexed-storage B-tree K (64)."""
    if HDF5 is None:
        return False
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    HDF5.H5Pset_istore_k(fcpl.id, 64)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
    fid = h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    with h5py.File(fid) as f:
        f.create_dataset("many", data=np.arange(40 * 30, dtype="i4").reshape(40, 30),
                         chunks=(3, 2), compression="gzip")
        f.create_dataset("few", data=field(25, (5,)), chunks=(2,))
    return True


def h5_v108(path):
    """libver v108: superblock 2, layout version 3 (version 1 B-trees), dense attributes
    and dense links (the 1.8 format), a group tracking creation order."""
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        h5_attributes(f, 16)
        many = f.create_group("many")
        for i in range(20):
            many.create_dataset(f"d{i:02d}", data=np.arange(i + 1, dtype="i2"),
                                chunks=(3,) if i % 2 and i > 2 else None)
        ordered = f.create_group("ordered", track_order=True)
        for name in ["zeta", "alpha", "mu", "beta", "omega", "gamma", "delta", "eta", "pi",
                     "tau"]:
            ordered.create_dataset(name, data=field(len(name), (3, len(name))))
        chunked = f.create_dataset("chunked", data=field(26, (9, 10)), chunks=(4, 4),
                                   maxshape=(None, None), compression="gzip", shuffle=True)
        h5_attributes(chunked, 10)
        compact(f, "compact", np.array([1.5, 2.5, np.nan], dtype="<f4"))
        f.create_dataset("contiguous", data=np.arange(10, dtype=">u4"))


def h5_indexes(path, libver="latest"):
    """Every chunk index, one group per index (at most 8 links each, attributes compact, so
    the header signatures count the indexes). libver latest with HDF5 2.0 writes layout
    messages of version 5 (filtered chunk sizes in 8 bytes in the chunk index), libver v114
    version 4 (as HDF5 1.10-1.14 write with libver latest)."""
    with h5py.File(path, "w", libver=libver) as f:
        g = f.create_group("single")
        g.create_dataset("filtered", data=field(40, (5, 7)), chunks=(5, 7), compression="gzip")
        g.create_dataset("plain", data=np.arange(35, dtype="i2").reshape(5, 7), chunks=(5, 7))
        g.create_dataset("fletcher", data=field(41, (6,), ">f8"), chunks=(6,),
                         fletcher32=True)
        g = f.create_group("implicit")
        low_level_chunked(g, "i2", np.arange(70, dtype="<i2").reshape(7, 10), (3, 4),
                          early=True)
        low_level_chunked(g, "f8_be", field(42, (5,), ">f8"), (2,), early=True)
        g = f.create_group("fixed")
        g.create_dataset("small", data=field(43, (7, 10)), chunks=(3, 4), compression="gzip")
        # 34 x 40 = 1360 chunks: more than one 1024-entry page of the fixed array.
        g.create_dataset("paged", data=(np.arange(100 * 120) % 30000).astype("i2")
                         .reshape(100, 120), chunks=(3, 3))
        g.create_dataset("fletcher", data=field(44, (10, 3), "f8"), chunks=(4, 2),
                         fletcher32=True)
        g.create_dataset("sparse", shape=(9, 9), dtype="u1", chunks=(4, 4))[0:4, 4:8] = 9
        if low_level_chunked(g, "partial", np.arange(70, dtype="<i4").reshape(7, 10), (3, 4),
                             gzip=True, shuffle=True, dont_filter_partial=True):
            pass
        masked_chunks(g, "masked")
        g = f.create_group("extensible")
        g.create_dataset("small", data=np.arange(30, dtype="f8").reshape(10, 3), chunks=(3, 3),
                         maxshape=(None, 3), fletcher32=True)
        # 334 chunks: past the index block into super blocks and data blocks.
        g.create_dataset("many", data=np.arange(2000, dtype="<u2").reshape(1000, 2),
                         chunks=(3, 2), maxshape=(None, 2), compression="gzip")
        g.create_dataset("unlimited_last", data=field(45, (4, 50)), chunks=(3, 4),
                         maxshape=(4, None))
        low_level_chunked(g, "partial", np.arange(50, dtype=">i4").reshape(10, 5), (3, 3),
                          gzip=True, dont_filter_partial=True, maxshape=(None, 5))
        g = f.create_group("btree2")
        g.create_dataset("plain", data=np.arange(2000, dtype="<i4").reshape(40, 50),
                         chunks=(3, 4), maxshape=(None, None))
        g.create_dataset("filtered", data=field(46, (40, 50)), chunks=(3, 4),
                         maxshape=(None, None), compression="gzip", shuffle=True)
        g.create_dataset("sparse", shape=(10, 10), dtype="i8", chunks=(3, 3),
                         maxshape=(None, None))[4:7, 0:9] = -5
        low_level_chunked(g, "partial", field(47, (8, 7)), (3, 3), gzip=True, shuffle=True,
                          dont_filter_partial=True, maxshape=(None, None))


def h5_latest(path):
    """libver latest: dense attributes (root, group, dataset), dense links (20 datasets),
    nested groups, creation order, compact, strings, an enum, scales and phony dims."""
    with h5py.File(path, "w", libver="latest") as f:
        h5_attributes(f, 18)
        scales(f)
        strings(f.create_group("strings"))
        many = f.create_group("many")
        h5_attributes(many, 9)
        for i in range(20):
            data = np.arange(i + 2, dtype="f4") * (-1) ** i
            if i % 3 == 0:
                compact(many, f"d{i:02d}", data)
            elif i % 3 == 1:
                many.create_dataset(f"d{i:02d}", data=data, chunks=(3,), compression="gzip")
            else:
                many.create_dataset(f"d{i:02d}", data=data)
        deep = f.create_group("one/two/three", track_order=True)
        for name in ["c", "a", "b"]:
            deep.create_dataset(name, data=np.arange(4, dtype="i1"))
        attributed = f.create_dataset("attributed", data=field(50, (4, 6)), chunks=(3, 5),
                                      compression="gzip", shuffle=True, fletcher32=True)
        h5_attributes(attributed, 12)
        compact(f, "compact", np.array([[1, 2], [3, 4]], dtype="<u8"))
        f.create_dataset("enum", data=np.array([0, 1, 1, 0, 1], dtype="i1"),
                         dtype=h5py.enum_dtype({"off": 0, "on": 1}, basetype="i1"))
        f.create_dataset("scalar", data=np.int32(-42))


def h5_v110(path):
    """libver v110: superblock 3 and layout version 4 as HDF5 1.10 writes them."""
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        f.create_dataset("fixed", data=field(60, (7, 5)), chunks=(3, 2), compression="gzip")
        f.create_dataset("extensible", data=np.arange(26, dtype="i2").reshape(13, 2),
                         chunks=(4, 2), maxshape=(None, 2))
        f.create_dataset("btree2", data=field(61, (5, 5), "f8"), chunks=(2, 2),
                         maxshape=(None, None), shuffle=True, compression="gzip")
        f.create_dataset("single", data=np.arange(6, dtype="u4"), chunks=(6,))
        f.create_dataset("contiguous", data=np.arange(6, dtype="u4"))


# ----------------------------------------------------------------------------------------
# The manifest


def h5_facts(ds):
    """What h5py knows of a dataset's storage."""
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    out = {"dtype": ds.dtype.str, "shape": list(ds.shape), "chunks": None, "layout": None,
           "index": None, "filters": filters, "dont_filter_partial": False,
           "chunk_table": None, "contiguous": None,
           "vlen_str": h5py.check_string_dtype(ds.dtype) is not None
           and h5py.check_string_dtype(ds.dtype).length is None}
    if layout == h5py.h5d.COMPACT:
        out["layout"] = "compact"
    elif layout == h5py.h5d.CONTIGUOUS:
        out["layout"] = "contiguous"
        offset = ds.id.get_offset()
        out["contiguous"] = None if offset is None else [offset, ds.id.get_storage_size()]
    else:
        out["layout"] = "chunked"
        out["chunks"] = list(ds.chunks)
        out["index"] = chunk_index_type(ds)
        out["dont_filter_partial"] = dont_filter_partial(dcpl)
        table = []
        if hasattr(ds.id, "chunk_iter"):
            ds.id.chunk_iter(lambda i: table.append(
                [list(i.chunk_offset), i.byte_offset, i.size, i.filter_mask]))
        else:
            for n in range(ds.id.get_num_chunks()):
                i = ds.id.get_chunk_info(n)
                table.append([list(i.chunk_offset), i.byte_offset, i.size, i.filter_mask])
        out["chunk_table"] = positions_from_reads(ds, table)
    return out


def positions_from_reads(ds, table):
    """The chunk table with each chunk's grid position taken from what the library reads
    there (`read_direct_chunk`), not from `chunk_iter`: HDF5 2.0.0 reports wrong positions
    for extensible arrays whose unlimited dimension is not the first (the bytes at the
    reported address belong to another chunk). Ties between identical chunks keep the
    reported position when it reads the same bytes."""
    import itertools
    with open(ds.file.filename, "rb") as fh:
        stored = []
        for entry in table:
            fh.seek(entry[1])
            stored.append(fh.read(entry[2]))
    grid = [range(-(-n // c)) for n, c in zip(ds.shape, ds.chunks)]
    placed = {}
    for scaled in itertools.product(*grid):
        offset = tuple(i * c for i, c in zip(scaled, ds.chunks))
        try:
            _, data = ds.id.read_direct_chunk(offset)
        except Exception:
            continue  # never written
        matches = [n for n, b in enumerate(stored) if b == data and n not in placed.values()]
        same = [n for n in matches if tuple(table[n][0]) == offset]
        if matches:
            placed[offset] = (same or matches)[0]
    out = []
    for offset, n in sorted(placed.items()):
        out.append([list(offset)] + table[n][1:])
    assert len(out) == len(table), (ds.name, len(out), len(table))
    return out


def nc_dims(path):
    """Every variable's dimension names as the netCDF library gives them, or None."""
    dims = {}
    try:
        with netCDF4.Dataset(path) as ds:
            def walk(group, prefix):
                for name, var in group.variables.items():
                    dims[prefix + name] = list(var.dimensions)
                for name, sub in group.groups.items():
                    walk(sub, prefix + name + "/")
            walk(ds, "")
    except Exception as e:  # noqa: BLE001 - the library cannot read every HDF5 file
        print(f"netCDF cannot open {path}: {e}", flush=True)
        return None
    return dims


def describe(name, path, kind):
    dims = nc_dims(path)
    datasets, groups = {}, [""]
    with h5py.File(path, "r") as f:
        def visit(p, obj):
            if isinstance(obj, h5py.Group):
                groups.append(p)
                return
            facts = h5_facts(obj)
            label = obj.attrs.get("NAME")
            facts["dimension_only"] = isinstance(label, bytes) and label.startswith(
                NC_DIMENSION_ONLY.encode())
            facts["dims"] = None if dims is None else dims.get(p)
            datasets[p] = facts
        f.visititems(visit)
    return {"name": name, "path": path, "kind": kind,
            "superblock": open(path, "rb").read(9)[8], "groups": groups, "datasets": datasets}


def count(path, signature):
    return open(path, "rb").read().count(signature)


def layout_versions(path):
    """The versions of the chunked datasets' layout messages, from the size of the filtered
    chunk index entries: 8-byte chunk sizes in version 5, fewer in version 4."""
    data = open(path, "rb").read()
    sizes = {data[m.start() + 6] for m in re.finditer(b"FAHD", data) if data[m.start() + 5]}
    return {5 if size == 20 else 4 for size in sizes}


def self_check(files, notes):
    """Every case the corpus claims is in the files it wrote."""
    by_name = {f["name"]: f for f in files}
    sb = {n: f["superblock"] for n, f in by_name.items()}
    assert sb["h5_earliest"] == 0 and sb["h5_v108"] == 2 and sb["h5_v110"] == 3, sb
    assert sb["h5_latest"] == sb["h5_indexes"] == sb["h5_indexes_v114"] == 3, sb
    if "h5_superblock1" in by_name:
        assert sb["h5_superblock1"] == 1, sb
    for n, f in by_name.items():
        indexes = {d["index"] for d in f["datasets"].values() if d["layout"] == "chunked"}
        if f["superblock"] < 3 and HDF5 is not None:
            assert indexes <= {"btree1"}, (n, indexes)
    ix = by_name["h5_indexes"]["datasets"]
    if HDF5 is not None:
        for p, d in [*ix.items(), *by_name["h5_indexes_v114"]["datasets"].items()]:
            want = {"single": "single", "implicit": "implicit", "fixed": "fixed_array",
                    "extensible": "extensible_array", "btree2": "btree2"}[p.split("/")[0]]
            assert d["index"] == want, (p, d["index"], want)
        v110 = by_name["h5_v110"]["datasets"]
        assert {p: d["index"] for p, d in v110.items() if d["chunks"]} == {
            "fixed": "fixed_array", "extensible": "extensible_array", "btree2": "btree2",
            "single": "single"}, v110
    # One header per fixed array, extensible array and version 2 B-tree (no dense storage
    # in those files); the extensible array of 334 chunks has super and data blocks, the
    # B-trees of 182 chunks internal nodes.
    for n in ["h5_indexes", "h5_indexes_v114"]:
        path = by_name[n]["path"]
        assert count(path, b"FAHD") == 5 + (HDF5 is not None), count(path, b"FAHD")
        assert count(path, b"EAHD") == 3 + (HDF5 is not None), count(path, b"EAHD")
        assert count(path, b"BTHD") == 3 + (HDF5 is not None), count(path, b"BTHD")
        assert count(path, b"EASB") >= 1 and count(path, b"EADB") >= 1, n
        assert count(path, b"BTIN") == 2, n
    latest_layout = 5 if h5py.version.hdf5_version_tuple >= (2, 0, 0) else 4
    assert layout_versions(by_name["h5_indexes"]["path"]) == {latest_layout}
    assert layout_versions(by_name["h5_indexes_v114"]["path"]) == {4}
    assert len(ix["fixed/paged"]["chunk_table"]) == 1360
    # Non-zero filter masks, and unfiltered partial edge chunks (filter mask 0: HDF5 knows
    # them from the layout's flag and their position).
    masks = sorted(c[3] for c in ix["fixed/masked"]["chunk_table"] if c[3])
    assert masks == [2, 3], masks
    if HDF5 is not None:
        for p in ["fixed/partial", "extensible/partial", "btree2/partial"]:
            d = ix[p]
            assert d["dont_filter_partial"], p
            assert any(is_raw(d, c) for c in d["chunk_table"]), p
    # Dense attributes and links: fractal heaps and their name indexes.
    for n in ["h5_latest", "h5_v108"]:
        assert count(by_name[n]["path"], b"FRHP") >= 3, n
    latest = by_name["h5_latest"]["datasets"]
    assert latest["compact"]["layout"] == "compact" and latest["many/d00"]["layout"] == "compact"
    assert by_name["h5_earliest"]["datasets"]["types/i1_le"]["layout"] == "chunked"
    assert count(by_name["h5_earliest"]["path"], b"FRHP") == 0
    unwritten = by_name["h5_earliest"]["datasets"]["fill/unwritten_fill"]
    assert len(unwritten["chunk_table"]) == 1, unwritten
    g = by_name["nc4_groups"]["datasets"]
    assert any(d["dimension_only"] for d in g.values()), "a dimension without coordinate"
    assert g["partial"]["chunk_table"] and len(g["partial"]["chunk_table"]) < 9, g["partial"]
    assert g["checked"]["filters"] == [3] and g["big"]["dtype"] == ">i4", g["big"]
    assert g["lon"]["layout"] == "contiguous" and g["notes"]["vlen_str"]
    assert by_name["nc4_ragged"]["datasets"]["short"]["shape"] == [3, 5]
    print("made", ", ".join(f"{n} (superblock {s})" for n, s in sb.items()), flush=True)
    for note in notes:
        print("note:", note, flush=True)


def make(out):
    os.makedirs(os.path.join(out, "daily"), exist_ok=True)
    notes = []
    if HDF5 is None:
        notes.append("h5py's libhdf5 cannot be loaded through ctypes: no superblock 1, no "
                     "H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS, no index type check")
    notes.append("h5py wraps neither H5Pset_chunk_opts nor H5Pset_istore_k nor "
                 "H5Dget_chunk_index_type: called through ctypes on h5py's own libhdf5")
    notes.append("partial edge chunks stored unfiltered keep filter mask 0 in the chunk "
                 "index: HDF5 recognises them by the layout message's flag and position")
    notes.append("superblock 1 needs a non-default B-tree K (H5Pset_istore_k), and HDF5 2.0 "
                 "defaults to the 1.8 format: libver earliest is set explicitly")
    written = []

    def add(name, kind, writer, ext):
        path = os.path.join(out, name + ext)
        if writer(path) is False:
            notes.append(f"{name} not written (needs ctypes access to libhdf5)")
            return
        written.append(describe(name, path, kind) | {"import": True})

    add("nc4_groups", "netcdf4", nc4_groups, ".nc")
    add("nc4_classic", "netcdf4", nc4_classic, ".nc")
    add("nc4_ragged", "netcdf4", nc4_ragged, ".nc")
    add("h5_earliest", "h5py", h5_earliest, ".h5")
    add("h5_superblock1", "h5py", h5_superblock1, ".h5")
    add("h5_v108", "h5py", h5_v108, ".h5")
    add("h5_v110", "h5py", h5_v110, ".h5")
    add("h5_indexes", "h5py", h5_indexes, ".h5")
    add("h5_indexes_v114", "h5py", lambda p: h5_indexes(p, ("v114", "v114")), ".h5")
    add("h5_latest", "h5py", h5_latest, ".h5")
    days = [daily(os.path.join(out, "daily"), i) for i in range(30)]
    for i, path in enumerate(days):
        written.append(describe(f"day_{i:02d}", path, "netcdf4") | {"import": False})
    # Given to floe out of order: it orders them by time.
    order = [days[(7 * i) % 30] for i in range(30)]
    self_check(written, notes)
    manifest = {"files": written, "notes": notes,
                "daily": {"files": days, "order": order, "append_dim": "time"}}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


# ----------------------------------------------------------------------------------------
# refs: floe's references against h5py's chunk tables


def is_raw(d, chunk):
    """Whether a chunk is stored with some filters skipped: a non-zero filter mask, or a
    partial edge chunk of a dataset that leaves those unfiltered."""
    offset, _, _, mask = chunk
    if mask:
        return True
    return d["dont_filter_partial"] and bool(d["filters"]) and any(
        o + c > s for o, c, s in zip(offset, d["chunks"], d["shape"]))


def jsonable(value):
    """An attribute value as floe writes it (spec/virtual.md §6 rule 6)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8").replace("\x00", "")
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, (list, tuple)):
        items = [jsonable(v) for v in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, np.ndarray):
        return jsonable(list(value.ravel()))
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if np.isnan(v):
            return "NaN"
        if np.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def expected_attrs(kind, path, dpath):
    """A group's or dataset's attributes as the file's own library shows them."""
    if kind == "netcdf4":
        with netCDF4.Dataset(path) as nc:
            obj = nc
            for part in [p for p in dpath.split("/") if p]:
                obj = obj.groups[part] if part in obj.groups else obj.variables[part]
            return {k: jsonable(obj.getncattr(k)) for k in obj.ncattrs() if k not in HIDDEN}
    with h5py.File(path) as f:
        obj = f[dpath] if dpath else f
        return {k: jsonable(obj.attrs[k]) for k in obj.attrs if k not in HIDDEN}


def load_refs(path):
    doc = json.load(open(path))
    assert doc.get("version") == 1, "not a version 1 reference file"
    return doc["refs"]


def inline_bytes(value):
    if isinstance(value, str) and value.startswith("base64:"):
        return base64.b64decode(value[len("base64:"):])
    return value.encode() if isinstance(value, str) else None


def decode_inline(zarray, raw):
    """An inline chunk decoded with its array's v2 codecs, shaped as a whole chunk."""
    codecs = list(zarray.get("filters") or [])
    if zarray.get("compressor"):
        codecs.append(zarray["compressor"])
    data = raw
    for codec in reversed(codecs):
        data = numcodecs.get_codec(codec).decode(data)
    chunks = zarray["chunks"] or []
    if zarray["dtype"] == "|O":
        return np.asarray(data, dtype=object).reshape(chunks)
    return np.frombuffer(bytes(data), dtype=zarray["dtype"]).reshape(chunks)


def chunk_key(offset, chunks):
    return ".".join(str(o // c) for o, c in zip(offset, chunks)) or "0"


def check_dataset(f, path, refs, h5file, d):
    """Every assertion about one dataset's references."""
    prefix = f"{path}/"
    zarray = json.loads(refs[prefix + ".zarray"])
    zattrs = json.loads(refs.get(prefix + ".zattrs", "{}"))
    ds = h5file[path]
    shape = d["shape"]
    want_dtype = "|O" if d["vlen_str"] else d["dtype"]
    if ds.dtype.kind == "S":
        want_dtype = "|" + d["dtype"][1:]
    assert zarray["shape"] == shape, (path, zarray["shape"], shape)
    assert zarray["dtype"] == want_dtype, (path, zarray["dtype"], want_dtype)
    assert zarray.get("order", "C") == "C", path
    attrs = expected_attrs(f["kind"], f["path"], path)
    fill = attrs.get("_FillValue", None)
    if isinstance(fill, list):
        fill = fill[0]
    if ds.dtype.kind == "S" or d["vlen_str"]:
        fill = zarray["fill_value"]  # char and string fill values: not checked
    assert zarray["fill_value"] == fill, (path, zarray["fill_value"], fill)
    dims = zattrs.pop("_ARRAY_DIMENSIONS", None)
    assert dims is not None and len(dims) == len(shape), (path, dims)
    if d["dims"] is not None:
        assert dims == d["dims"], (path, dims, d["dims"])
    assert zattrs == attrs, (path, zattrs, attrs)
    codecs = [c["id"] for c in (zarray.get("filters") or [])]
    if zarray.get("compressor"):
        codecs.append(zarray["compressor"]["id"])
    want_codecs = [FILTER_NAMES.get(i, i) for i in d["filters"] if i != 3]
    if d["vlen_str"]:
        # Variable-length strings are copied out of the global heap: plain vlen-utf8 chunks.
        want_codecs = ["vlen-utf8"]
    assert codecs == want_codecs, (path, codecs, want_codecs)
    # The chunks: which keys, byte ranges or inline.
    found = {k[len(prefix):]: v for k, v in refs.items()
             if k.startswith(prefix) and "/" not in k[len(prefix):]
             and not k[len(prefix):].startswith(".")}
    url = os.path.abspath(f["path"])
    fletcher = 4 if 3 in d["filters"] else 0
    expected = {}
    if d["layout"] == "chunked":
        assert zarray["chunks"] == d["chunks"], (path, zarray["chunks"], d["chunks"])
        for chunk in d["chunk_table"]:
            offset, byte_offset, size, _ = chunk
            key = chunk_key(offset, d["chunks"])
            inline = is_raw(d, chunk) or d["vlen_str"]
            expected[key] = ("inline", offset) if inline else (byte_offset, size - fletcher)
    elif d["layout"] == "contiguous":
        assert zarray["chunks"] == shape, (path, zarray["chunks"])
        if d["contiguous"] is not None:
            key = chunk_key([0] * len(shape), shape or [1])
            expected[key] = (("inline", [0] * len(shape)) if d["vlen_str"]
                             else tuple(d["contiguous"]))
    else:
        assert zarray["chunks"] == shape, (path, zarray["chunks"])
        expected[chunk_key([0] * len(shape), shape or [1])] = ("inline", [0] * len(shape))
    assert sorted(found) == sorted(expected), (path, sorted(found), sorted(expected))
    for key, want in expected.items():
        got = found[key]
        if want[0] == "inline":
            raw = inline_bytes(got)
            assert raw is not None, (path, key, "a byte range where inline data belongs", got)
            chunk = decode_inline(zarray, raw)
            region = tuple(slice(o, min(o + c, s))
                           for o, c, s in zip(want[1], zarray["chunks"], shape))
            values = (ds.asstr() if d["vlen_str"] else ds)[region]
            within = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
            assert same_values(within, values), (path, key, within, values)
        else:
            assert isinstance(got, list) and len(got) == 3, (path, key, got)
            assert os.path.abspath(got[0].removeprefix("file://")) == url, (path, got[0])
            assert (got[1], got[2]) == want, (path, key, (got[1], got[2]), want)


def same_values(a, b):
    """Equal bit for bit (native byte order; NaN payloads included), or equal strings."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "OUST" or b.dtype.kind in "OUST":
        return [jsonable(x) for x in a.ravel()] == [jsonable(x) for x in b.ravel()]
    if a.dtype.kind != b.dtype.kind or a.dtype.itemsize != b.dtype.itemsize:
        return False
    native = a.dtype.newbyteorder("=")
    return a.astype(native).tobytes() == b.astype(native).tobytes()


def check_file(f):
    refs = load_refs(f["path"] + ".floe.json")
    with h5py.File(f["path"], "r") as h5file:
        wanted = {p: d for p, d in f["datasets"].items() if not d["dimension_only"]}
        arrays = {k[: -len("/.zarray")] for k in refs if k.endswith("/.zarray")}
        if ".zarray" in refs:
            arrays.add("")
        assert arrays == set(wanted), ("arrays", sorted(arrays ^ set(wanted)))
        groups = {k[: -len(".zgroup")].rstrip("/") for k in refs if k.endswith(".zgroup")}
        assert groups == set(f["groups"]), ("groups", sorted(groups), f["groups"])
        for g in f["groups"]:
            key = f"{g}/.zattrs" if g else ".zattrs"
            got = json.loads(refs.get(key, "{}"))
            want = expected_attrs(f["kind"], f["path"], g)
            assert got == want, (g or "/", got, want)
        problems = []
        for path, d in sorted(wanted.items()):
            try:
                check_dataset(f, path, refs, h5file, d)
            except AssertionError as e:
                problems.append(f"{path}: {e}"[:600])
        if problems:
            raise AssertionError(f"{len(problems)} datasets differ: " + " | ".join(problems))


def check_refs(out):
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    for f in manifest["files"]:
        if not os.path.exists(f["path"] + ".floe.json"):
            print(f"refs FAIL {f['name']}: no references emitted", flush=True)
            continue
        try:
            check_file(f)
            print(f"refs ok {f['name']}", flush=True)
        except Exception as e:  # noqa: BLE001 - reported, the Rust test fails on it
            print(f"refs FAIL {f['name']}: {type(e).__name__}: {e}"[:3000], flush=True)


# ----------------------------------------------------------------------------------------
# compare: read through `floe serve`


def open_served(url, group=None):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*consolidated.*")
        return xr.open_zarr(url, group=group).load()


def assert_same_dataset(got, want):
    for v in want.variables:
        a, b = got[v], want[v]
        if (b.dtype == np.float32 and a.dtype == np.float64
                and "scale_factor" in b.encoding):
            # A float32 scale_factor comes back from JSON as float64 (spec/virtual.md §5.4):
            # the values agree to float32 rounding and the rest must match.
            assert a.attrs == b.attrs, (v, a.attrs, b.attrs)
            xr.testing.assert_allclose(a.astype(np.float32), b, rtol=1e-6, atol=1e-5)
            got[v] = b
        elif b.dtype.kind in "OUST" or a.dtype.kind in "OUST":
            # Text: numpy's StringDType (kind T, what zarr-python 3 gives), object or unicode.
            assert a.dtype.kind in "OUST" and b.dtype.kind in "OUST", (v, a.dtype, b.dtype)
        else:
            assert (a.dtype.kind, a.dtype.itemsize) == (b.dtype.kind, b.dtype.itemsize), \
                (v, a.dtype, b.dtype)
    xr.testing.assert_identical(got, want)


def compare_netcdf4(url, f):
    for g in f["groups"]:
        label = f"{f['name']}/{g}" if g else f["name"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = xr.open_dataset(f["path"], group=g or None).load()
            got = open_served(f"{url}/{g}" if g else url)
            assert_same_dataset(got, want)
            print(f"ok {label}", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {label}: {type(e).__name__}: {e}"[:3000], flush=True)


def unwritten_as_zero(ds, d, values):
    """floe's Zarr fill value is `_FillValue` or null, so a chunk never written reads as 0
    even where HDF5 gives its own fill value (spec/virtual.md §7 rule 7)."""
    if d["layout"] != "chunked" or "_FillValue" in ds.attrs:
        return values
    fill = ds.fillvalue
    if ds.dtype.kind not in "iuf" or fill == 0:
        return values
    values = np.array(values)
    written = {tuple(c[0]) for c in d["chunk_table"]}
    for index in np.ndindex(*[-(-s // c) for s, c in zip(d["shape"], d["chunks"])]):
        offset = tuple(i * c for i, c in zip(index, d["chunks"]))
        if offset not in written:
            values[tuple(slice(o, o + c) for o, c in zip(offset, d["chunks"]))] = 0
    return values


def compare_h5py(url, f):
    try:
        root = zarr.open_group(url, mode="r")
        with h5py.File(f["path"], "r") as h5:
            for path, d in sorted(f["datasets"].items()):
                ds = h5[path]
                got = root[path][...]
                want = (ds.asstr() if d["vlen_str"] else ds)[()]
                want = unwritten_as_zero(ds, d, want)
                assert same_values(got, want), (path, got, want)
        print(f"ok {f['name']}", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {f['name']}: {type(e).__name__}: {e}"[:3000], flush=True)


def compare_daily(url, files):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = xr.open_mfdataset(files, combine="nested", concat_dim="time",
                                     data_vars="minimal", coords="minimal",
                                     compat="override", join="override").load()
        assert_same_dataset(open_served(url), want)
        print("ok daily", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL daily: {type(e).__name__}: {e}"[:3000], flush=True)


def compare(server, out, imported_path):
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    imported = set(json.load(open(imported_path)))
    for f in manifest["files"]:
        if f["name"] not in imported:
            continue
        url = f"{server}/main/{f['name']}"
        if f["kind"] == "netcdf4":
            compare_netcdf4(url, f)
        else:
            compare_h5py(url, f)
    if "daily" in imported:
        compare_daily(f"{server}/main/daily", manifest["daily"]["files"])


if __name__ == "__main__":
    try:
        if sys.argv[1] == "make":
            make(sys.argv[2])
        elif sys.argv[1] == "refs":
            check_refs(sys.argv[2])
        elif sys.argv[1] == "compare":
            compare(sys.argv[2], sys.argv[3], sys.argv[4])
        else:
            sys.exit(__doc__)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
