"""Writes the small HDF5 files tests/hdf5_mutations.rs mutates (committed; rerun to remake).

- nc4.nc: netCDF-4 by netCDF4-python: an unlimited `time`, a compressed 3-D variable with
  chunks that do not divide its shape, a variable-length string variable, a group, attributes
  of several types.
- earliest.h5: h5py, superblock 0: a chunked gzip+shuffle dataset (version 1 B-tree), a
  contiguous big-endian one, a compact one, a group, attributes.
- latest.h5: h5py, libver latest: fixed array, extensible array and version 2 B-tree chunk
  indexes, dense attributes and dense links (more than 8 of each), fletcher32.

Usage: python tests/data/hdf5/make.py tests/data/hdf5
"""
import os
import sys

import h5py
import netCDF4
import numpy as np


def nc4(path):
    ds = netCDF4.Dataset(path, "w")
    ds.createDimension("time", None)
    ds.createDimension("y", 5)
    ds.createDimension("x", 7)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = "hours since 2000-01-01"
    t[:] = np.arange(3)
    v = ds.createVariable("v", "f4", ("time", "y", "x"), zlib=True, shuffle=True,
                          chunksizes=(2, 3, 4), fill_value=np.float32(-999))
    v.long_name = "value"
    v.valid_range = np.array([-10, 10], dtype="f4")
    v[:] = np.linspace(-1, 1, 105, dtype="f4").reshape(3, 5, 7)
    s = ds.createVariable("names", str, ("y",))
    s[:] = np.array(["a", "bb", "", "dddd", "e"], dtype=object)
    ds.title = "mutations"
    ds.version = np.int32(3)
    g = ds.createGroup("g")
    gv = g.createVariable("w", "i2", ("x",))
    gv[:] = np.arange(7)
    ds.close()


def earliest(path):
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("chunked", data=np.arange(60, dtype="i4").reshape(6, 10),
                         chunks=(4, 3), compression="gzip", shuffle=True)
        f.create_dataset("contiguous", data=np.arange(6, dtype=">f8"))
        space = h5py.h5s.create_simple((4,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_I16LE, space, dcpl).write(
            h5py.h5s.ALL, h5py.h5s.ALL, np.arange(4, dtype="<i2"))
        f.create_group("group").create_dataset("inner", data=np.ones(3, dtype="u1"))
        f.attrs["text"] = np.bytes_(b"fixed")
        f.attrs["numbers"] = np.array([1.5, 2.5])


def latest(path):
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("fixed", data=np.arange(50, dtype="i2").reshape(5, 10), chunks=(2, 4))
        f.create_dataset("extensible", data=np.arange(30, dtype="f8").reshape(10, 3),
                         chunks=(3, 3), maxshape=(None, 3), fletcher32=True)
        f.create_dataset("btree2", data=np.arange(20, dtype="u4").reshape(4, 5),
                         chunks=(3, 2), maxshape=(None, None), compression="gzip")
        for i in range(10):
            f.attrs[f"attribute_{i}"] = i
            f.create_group(f"group_{i}")


if __name__ == "__main__":
    out = sys.argv[1]
    nc4(os.path.join(out, "nc4.nc"))
    earliest(os.path.join(out, "earliest.h5"))
    latest(os.path.join(out, "latest.h5"))
