"""What a command read: the params.yaml keys and the project files (TOOLKIT_TRACE_READS=FOLDER).

With the variable set, each `toolkit` command writes FOLDER/<command>.json when it exits:
`params` (the dotted keys it read; a section read whole, e.g. through `Params.section`, is listed as
the section) and `files` (files under the working directory it opened for reading). The test suite
runs the pipeline with it and checks that dvc.yaml declares every one of them, so DVC cannot skip a
stage whose inputs changed. Off by default; it costs nothing when off.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

TRACE_ENV = "TOOLKIT_TRACE_READS"


class _Trace:
    def __init__(self, folder: Path, command: str):
        self.folder, self.command = folder, command
        self.root = Path.cwd().resolve()
        self.package_root = Path(__file__).resolve().parents[1]
        self.params: set[str] = set()
        self.files: set[str] = set()
        self.paths: dict[int, str] = {}   # id(model) -> dotted path in Params

    def register(self, model, prefix: str = "") -> None:
        from toolkit.config import StrictModel

        self.paths[id(model)] = prefix
        for name in type(model).model_fields:
            value = model.__dict__.get(name)
            if isinstance(value, StrictModel):
                self.register(value, f"{prefix}{name}.")

    def opened(self, path, mode, flags) -> None:
        if not isinstance(path, (str, os.PathLike)):
            return
        writing = (any(c in mode for c in "wax+") if isinstance(mode, str)
                   else bool(flags & (os.O_WRONLY | os.O_RDWR)) if isinstance(flags, int) else False)
        if writing:
            return
        absolute = Path(os.path.abspath(path))
        # The toolkit's own data files (shipped price catalog, default templates) count as project files:
        # an installed toolkit reads them from its package, the project's dvc.yaml names them under toolkit/.
        if absolute.suffix in (".py", ".pyc") or not absolute.is_file():
            return
        for folder in (self.package_root / "toolkit", self.package_root / "templates", self.root):
            if absolute.is_relative_to(folder):
                self.files.add(absolute.relative_to(folder.parent if folder != self.root else folder).as_posix())
                return

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{self.command}.json").write_text(json.dumps(
            {"command": self.command, "params": sorted(self.params), "files": sorted(self.files)}, indent=1))


def start_if_requested(argv: list[str]) -> None:
    folder = os.environ.get(TRACE_ENV)
    if not folder:
        return
    import toolkit.config as config

    words = []
    for arg in argv:   # the command words before the first option: "evaluate heldout" -> evaluate-heldout
        if arg.startswith("-") or "/" in arg:
            break
        words.append(arg)
    command = "-".join(words) or "toolkit"
    trace = _Trace(Path(folder).resolve(), command)
    loader = config.load_params

    def traced_load(*args, **kwargs):
        params = loader(*args, **kwargs)
        trace.register(params)
        return params

    config.load_params = traced_load
    cli = sys.modules.get("toolkit.cli")
    if cli is not None:
        cli.load_params = traced_load
    _record_field_reads(config.StrictModel, trace)
    sys.addaudithook(lambda event, args: trace.opened(*args) if event == "open" and trace else None)
    atexit.register(trace.write)


def _record_field_reads(model_class, trace: _Trace) -> None:
    """A field read that yields a value (not a sub-section) is a key read; `model_dump` reads it all."""
    get = object.__getattribute__
    dump = model_class.model_dump

    def getattribute(self, name):
        value = get(self, name)
        if name in type(self).model_fields and not isinstance(value, model_class):
            prefix = trace.paths.get(id(self))
            if prefix is not None:
                trace.params.add(prefix + name)
        return value

    def model_dump(self, *args, **kwargs):
        prefix = trace.paths.get(id(self))
        excluded = kwargs.get("exclude")
        if prefix is not None and isinstance(excluded, (set, frozenset)):   # the section but these fields
            trace.params.update(prefix + name for name in type(self).model_fields if name not in excluded)
        elif prefix is not None:
            trace.params.add(prefix.rstrip(".") or "*")   # "*": the whole of params.yaml
        return dump(self, *args, **kwargs)

    model_class.__getattribute__ = getattribute
    model_class.model_dump = model_dump
