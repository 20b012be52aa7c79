# The package's version: the C library's OODSEG_VERSION (include/oodseg.h); a test checks they agree.
__version__ = "0.1.0"
