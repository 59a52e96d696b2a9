"""memdash: start the heap reporter, then run the ``sitecustomize`` this file hides.

This directory is prepended to PYTHONPATH by ``memdash run``, so Python imports this file as
``sitecustomize`` at start-up. Any sitecustomize the user or the distribution had (the next one
on sys.path after this directory) still runs, under the same name, right after the reporter
started; an error in it is reported by ``site`` exactly as it would be without memdash.
"""


def _memdash_start() -> None:
    try:
        import _memdash_reporter

        _memdash_reporter.start()
    except Exception:  # the reporter never breaks the program it watches
        pass


def _memdash_chain() -> None:
    import os
    import sys

    # Only the C-level import machinery (always loaded): ``importlib`` costs an import.
    bootstrap = sys.modules["_frozen_importlib"]
    external = sys.modules["_frozen_importlib_external"]

    here = os.path.normcase(os.path.dirname(os.path.abspath(__file__)))
    after = None
    for i, entry in enumerate(sys.path):
        if os.path.normcase(os.path.abspath(entry or os.curdir)) == here:
            after = sys.path[i + 1 :]
            break
    if after is None:  # imported some other way: chaining could find this very file again
        return
    spec = external.PathFinder.find_spec("sitecustomize", after)
    if spec is None or spec.loader is None:
        return
    module = bootstrap.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_memdash_start()
_memdash_chain()
