"""nutpie sampling with its compiled log-density kept on disk between runs.

``nutpie.compile_pymc_model`` turns the model's log-density and gradient into two C callbacks
(``numba.cfunc``) around the function PyTensor generates. PyTensor caches its own generated
function on disk (keyed by the graph, data constants included), but nutpie's callbacks are
compiled afresh in every process, and compiling them re-types and re-lowers the whole
generated function: 6–10 s of the default fit_ea run, every run.

Here the callbacks are built from fixed source text and registered with PyTensor's numba cache
under a digest of the model's graph (``graph_key``: every operation and its parameters, every
data constant's bytes, the versions of this wrapper, nutpie, numba and PyTensor), with a small
JSON record of the parameter layout beside them. A later run of the same model on the same data
loads both in well under a second and skips PyTensor's graph rewriting and code generation as
well; any change of data, model or library gives a new digest and compiles afresh. Models that
read shared variables go to ``nutpie.compile_pymc_model``. The sampler, its settings and its
draws are nutpie's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numba
import numpy as np
import pymc as pm

# Bump when the callback source below changes: it is part of the cache key.
WRAPPER_VERSION = 1

_LOGP_SRC = '''
def tpflux_logp_callback(dim, x_, out_, logp_, user_data_):
    if dim != N_DIM:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_DIM,))
        logp = numba.carray(logp_, ())
        logp_val, grad = logp_fn(x)
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
'''

_EXPAND_SRC = '''
def tpflux_expand_callback(dim, expanded, x_, out_, user_data_):
    if dim != N_DIM:
        return -1
    if expanded != N_EXPANDED:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_EXPANDED,))
        (values,) = expand_fn(x)
        out[...] = values
    except Exception:
        return -2
    return 0
'''

# The C signatures nutpie calls (nutpie.compile_pymc._make_c_logp_func / _make_c_expand_func).
_LOGP_SIG = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double), numba.types.voidptr)
_EXPAND_SIG = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double), numba.types.voidptr)


def _versions() -> tuple[str, ...]:
    import nutpie
    import pytensor

    return (str(WRAPPER_VERSION), nutpie.__version__, numba.__version__, pytensor.__version__)


def _op_token(op) -> str:
    props = getattr(op, "__props__", None)
    fields = ([(p, getattr(op, p)) for p in props] if props is not None
              else sorted(vars(op).items()))
    return repr((type(op).__module__, type(op).__qualname__, fields))


def graph_key(outputs) -> str:
    """A digest of the graph computing ``outputs``: every operation with its parameters, the
    bytes of every constant and the current value of every shared variable (PyMC's dimension
    lengths), every input's type and name, and the library versions."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs, io_toposort

    inputs = list(graph_inputs(outputs))
    digest = hashlib.sha256(repr(_versions()).encode())
    ids: dict = {}

    def ident(var) -> int:
        if var not in ids:
            if isinstance(var, Constant | SharedVariable):  # shared: by their value now
                data = np.ascontiguousarray(var.data if isinstance(var, Constant) else
                                            var.get_value(borrow=True))
                token = (type(var).__name__, var.name, str(var.type), data.dtype.str,
                         data.shape, hashlib.sha256(data.tobytes()).hexdigest())
            else:
                token = ("input", str(var.type), var.name)
            digest.update(repr(token).encode())
            ids[var] = len(ids)
        return ids[var]

    for node in io_toposort(inputs, outputs):
        digest.update(repr((_op_token(node.op), [ident(v) for v in node.inputs],
                            [str(v.type) for v in node.outputs])).encode())
        for out in node.outputs:
            ids[out] = len(ids)
    digest.update(repr([ident(v) for v in outputs]).encode())
    return digest.hexdigest()


def _callbacks(key: str, n_dim: int, n_expanded: int, logp_fn=None, expand_fn=None):
    """The two C callbacks registered in PyTensor's numba cache under ``key``. Without the
    wrapped functions (a warm start) they can only be loaded, not compiled: numba then fails."""
    from pytensor.link.numba.cache import compile_numba_function_src

    env = {"__name__": __name__, "numba": numba, "np": np, "N_DIM": n_dim,
           "N_EXPANDED": n_expanded, "logp_fn": logp_fn, "expand_fn": expand_fn}
    out = []
    for src, name, sig in ((_LOGP_SRC, "tpflux_logp_callback", _LOGP_SIG),
                           (_EXPAND_SRC, "tpflux_expand_callback", _EXPAND_SIG)):
        py_func = compile_numba_function_src(src, name, dict(env), cache_key=f"{key}-{name}")
        out.append(numba.cfunc(sig, cache=True)(py_func))  # compiled, or loaded, here
    return out


def _metadata_path(key: str):
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    return NUMBA_CACHE_PATH / f"tpflux-nutpie-{key}.json"


def compile_model(model: pm.Model):
    """A nutpie compiled model of ``model``: loaded from the disk cache when the same graph was
    compiled before (see the module docstring), else compiled and stored; models whose compiled
    functions read shared variables at run time go to ``nutpie.compile_pymc_model``."""
    import nutpie
    from nutpie import compile_pymc as ncp
    from pymc.initial_point import make_initial_point_fn

    key = graph_key([model.logp(), *model.unobserved_value_vars])
    # As nutpie.compile_pymc_model initialises: support points, every free variable jittered.
    point_fn = ncp._wrap_with_lock(make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    callbacks, meta = _load(key)
    if callbacks is None:
        callbacks, meta = _compile(model, point_fn, key)
    if callbacks is None:  # the compiled functions read shared variables at run time
        return nutpie.compile_pymc_model(model)
    shape_info = (meta["names"], [slice(*s) for s in meta["slices"]],
                  [tuple(s) for s in meta["shapes"]])
    n_dim, n_expanded, reparameterized = meta["n_dim"], meta["n_expanded"], meta["reparameterized"]
    n_free = len(model.free_RVs)
    init_fn = ncp._rv_dict_to_flat_array_wrapper(point_fn, names=shape_info[0][:n_free],
                                                  shapes=shape_info[2][:n_free])
    dims, coords = ncp._prepare_dims_and_coords(model, shape_info, reparameterized)
    return ncp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=callbacks[0], compiled_expand_func=callbacks[1],
        initial_point_func=init_fn, shared_data={}, shared_var_keys={},
        user_data=ncp.make_user_data({}, {}), n_expanded=n_expanded, shape_info=shape_info,
        logp_func=None, expand_func=None, reparameterized_names=reparameterized)


def _load(key: str):
    """The cached callbacks and their record, or (None, None) when absent or unusable."""
    path = _metadata_path(key)
    if not path.exists():
        return None, None
    try:
        meta = json.loads(path.read_text())
        return _callbacks(key, meta["n_dim"], meta["n_expanded"]), meta
    except Exception:  # noqa: BLE001  (a stale or partial cache entry: compile afresh)
        return None, None


def _compile(model: pm.Model, point_fn, key: str):
    """Compile the log-density and expansion (nutpie's own graph building), build the cached
    callbacks, and record what a warm start needs."""
    from nutpie import compile_pymc as ncp

    n_dim, n_expanded, logp_pt, expand_pt, _, (names, slices, shapes), reparameterized = (
        ncp._make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                            pymc_initial_point_fn=point_fn))
    if logp_pt.get_shared() or expand_pt.get_shared():
        return None, None
    callbacks = _callbacks(key, n_dim, n_expanded, logp_pt.vm.jit_fn, expand_pt.vm.jit_fn)
    meta = {"n_dim": int(n_dim), "n_expanded": int(n_expanded), "names": list(names),
            "slices": [[int(s.start), int(s.stop)] for s in slices],
            "shapes": [list(map(int, s)) for s in shapes],
            "reparameterized": list(reparameterized)}
    path = _metadata_path(key)
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_text(json.dumps(meta))
    os.replace(part, path)  # written after the callbacks: a warm start never misses them
    return callbacks, meta


def _chain_seed(seed: int, chains: int) -> int:
    """The seed ``pm.sample`` hands nutpie for ``random_seed=seed``: same seed, same draws."""
    from pymc.util import get_random_generator

    return int(get_random_generator(seed).spawn(chains)[0].integers(2**30))


def sample(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, seed: int,
           progressbar: bool = False, **nuts) -> "xr.DataTree":  # noqa: F821
    """``pm.sample(nuts_sampler="nutpie", ...)`` with the cached compilation: the same seed
    per chain as PyMC derives, the same DataTree (constant and observed data attached)."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    compiled = compile_model(model)
    start = time.time()
    tree = nutpie.sample(compiled, draws=draws, tune=max(1, tune), chains=chains, cores=cores,
                         seed=_chain_seed(seed, chains), progress_bar=progressbar,
                         **nuts)
    patch_nutpie_idata(tree, model, sampling_time=time.time() - start)
    return tree
