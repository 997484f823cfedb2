"""Writes an HDF5 file (h5py, superblock 0) whose 1024 x 1024 float dataset has 16,384
gzip+shuffle chunks of 8 x 8 in a two-level version 1 B-tree (tests/hdf5_remote.rs).

Usage: python tests/python/hdf5_deep.py OUT.h5
"""
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "w", libver="earliest") as f:
    f.create_dataset("v", data=np.arange(1024 * 1024, dtype="f4").reshape(1024, 1024),
                     chunks=(8, 8), compression="gzip", shuffle=True)
