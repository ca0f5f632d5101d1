# tpflux installs the finder that keeps this suite's own data/ and models/ packages in front of
# same-named folders in the working directory (``python -m`` puts it first on sys.path).
import tpflux  # noqa: F401
