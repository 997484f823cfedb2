"""netCDF-3 and netCDF-4 files imported natively from Python (`Repository.import_netcdf`): daily files given
out of order land in time order and read in xarray as `open_mfdataset` reads the files; a
refused import changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import floe

netCDF4 = pytest.importorskip("netCDF4")
xr = pytest.importorskip("xarray")


def daily_file(path, day: int, fmt: str) -> str:
    ds = netCDF4.Dataset(path, "w", format=fmt)
    ds.createDimension("time", None)
    ds.createDimension("x", 3)
    t = ds.createVariable("time", "f8", ("time",))
    t.units = f"hours since 2026-01-{day:02d}"
    x = ds.createVariable("x", "f4", ("x",))
    x[:] = [1.0, 2.0, 3.0]
    v = ds.createVariable("v", "f4", ("time", "x"), fill_value=np.float32(-999.0))
    v.long_name = "a value"
    t[:] = np.arange(4)
    data = np.arange(12, dtype="f4").reshape(4, 3) + day
    data[0, 0] = -999.0
    v[:] = data
    ds.close()
    return str(path)


@pytest.mark.parametrize(
    "fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA", "NETCDF4", "NETCDF4_CLASSIC"]
)
def test_daily_files_import_in_time_order_and_read_like_the_files(tmp_path, fmt) -> None:
    repo = floe.Repository.init(str(tmp_path / "repo"))
    files = [daily_file(tmp_path / f"day{d}.nc", d, fmt) for d in (1, 2, 3)]
    snapshot, summary = repo.import_netcdf(
        list(reversed(files)), "obs", append_dim="time", drop_variables=[]
    )
    assert snapshot and "loaded /obs/time (coordinate variable)" in summary
    reader = repo.with_virtual_access([str(tmp_path)]).readonly_session()
    got = xr.open_zarr(reader.store, group="obs", consolidated=False).load()
    want = xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal",
                             coords="minimal", compat="override", join="override").load()
    xr.testing.assert_identical(got, want)
    assert np.isnan(got["v"].values[0, 0]) and np.isnan(got["v"].values[4, 0])


def test_overlapping_files_and_unknown_variables_are_refused(tmp_path) -> None:
    repo = floe.Repository.init(str(tmp_path / "repo"))
    day = daily_file(tmp_path / "day1.nc", 1, "NETCDF3_CLASSIC")
    before = repo.log()[0].id
    with pytest.raises(floe.ImportRefusedError, match="overlap"):
        repo.import_netcdf([day, day], "obs", append_dim="time")
    with pytest.raises(floe.ImportRefusedError, match="no variable `nope`"):
        repo.import_netcdf(day, "obs", variables=["nope"])
    with pytest.raises(floe.InvalidArgumentError, match="append_dim"):
        repo.import_netcdf([day, day], "obs")
    assert repo.log()[0].id == before


def test_a_pattern_imports_the_files_it_matches(tmp_path) -> None:
    repo = floe.Repository.init(str(tmp_path / "repo"))
    files = [daily_file(tmp_path / f"day{d}.nc", d, "NETCDF4") for d in (1, 2)]
    daily_file(tmp_path / "other.nc", 9, "NETCDF4")
    repo.import_netcdf(str(tmp_path / "day?.nc"), "obs", append_dim="time")
    reader = repo.with_virtual_access([str(tmp_path)]).readonly_session()
    got = xr.open_zarr(reader.store, group="obs", consolidated=False).load()
    want = xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal",
                             coords="minimal", compat="override", join="override").load()
    xr.testing.assert_identical(got, want)
    with pytest.raises(floe.ImportRefusedError, match="no file matches"):
        repo.import_netcdf(str(tmp_path / "none*.nc"), "obs", append_dim="time")
