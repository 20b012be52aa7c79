# The two ways to use the package on Debian without PyPI (README, section "Python"):
# PYTHONPATH=build/python, and a venv with system site packages and an offline `pip install ./python`.
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

CHECK = "import oodseg; print(oodseg.__version__)"


def test_pythonpath_build_python():
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    env.pop("OODSEG_LIBRARY", None)
    out = subprocess.run([sys.executable, "-c", CHECK + "; import oodseg._lib as l; print(l.lib._name)"],
                         env=env, cwd="/", capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0.1.0" and out[1].startswith(os.path.join(BUILD, "python"))
    # the default model is found beside the library (build/python/share/oodseg/models)
    env.pop("OODSEG_ASSETS", None)
    code = "import oodseg; print(oodseg.Model(size='64x32').info.arch)"
    assert "espnetv2" in subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True,
                                        text=True, check=True).stdout


def test_missing_library_says_where_it_looked():
    env = dict(os.environ, OODSEG_LIBRARY="/nonexistent/liboodseg.so", PYTHONPATH=os.path.join(BUILD, "python"))
    r = subprocess.run([sys.executable, "-c", "import oodseg"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "/nonexistent/liboodseg.so" in r.stderr and "make python" in r.stderr


def test_venv_offline_pip_install(tmp_path):
    try:
        import venv, ensurepip  # noqa: F401  (Debian: python3-venv)
    except ImportError as e:
        pytest.skip(f"python3-venv is not installed ({e})")
    v = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(v)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"python3 -m venv failed (python3-venv missing?): {r.stderr.strip()[-200:]}")
    py = str(v / "bin" / "python")
    src = tmp_path / "src"
    subprocess.run(["cp", "-r", os.path.join(ROOT, "python"), str(src)], check=True)   # keep the tree clean
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", str(src)],
                       capture_output=True, text=True)
    if r.returncode and "No module named pip" in r.stderr:
        pytest.skip("pip is not available in the venv (python3-pip missing)")
    assert r.returncode == 0, r.stderr
    # where `make install PREFIX="$VIRTUAL_ENV"` puts the library
    subprocess.run(["cp", os.path.join(BUILD, "liboodseg.so"), str(v / "lib")], check=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("OODSEG_LIBRARY", None)
    out = subprocess.run([py, "-c", CHECK + "; import oodseg._lib as l; print(oodseg.__file__, l.lib._name)"],
                         env=env, cwd="/", capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0.1.0" and out[1].startswith(str(v)) and out[2] == str(v / "lib" / "liboodseg.so")
