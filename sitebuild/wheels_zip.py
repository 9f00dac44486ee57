"""The one deterministic zip writer (sorted names, fixed timestamps and permissions): same members, same bytes.

Standard library only: ``pyc_helper.py`` imports it under CPython 3.12 as well as the build under 3.11.
"""

import zipfile

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def write_zip(dst, members) -> None:
    """Write ``members`` [(name, bytes)] to the zip ``dst`` (a path), deflated at level 9, in name order."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in sorted(members):
            zi = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
