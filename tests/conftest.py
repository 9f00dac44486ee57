import pathlib
import sys

# tests import the shared harness as `browser` and the project packages from the checkout
ROOT = pathlib.Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
