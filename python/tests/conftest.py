# The package under test is the one `make python` built ($OODSEG_BUILD/python, default build/python).
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("OODSEG_BUILD", "build"))
sys.path.insert(0, os.path.join(BUILD, "python"))
os.environ.setdefault("OODSEG_ASSETS", os.path.join(ROOT, "..", "shared"))
