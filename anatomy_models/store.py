"""Where spinesim keeps what it makes: named anatomies (and other caches) under one home folder.

The home is ``$SPINESIM_HOME`` if set, else ``~/.cache/spinesim``. Named anatomies live in
``<home>/anatomies/<name>/`` in the on-disk form of :class:`~anatomy_models.anatomy.Anatomy`.
Generated spines are cached in ``<home>/generated/<parameter hash>/``; the hash covers every
parameter and the generator version, so a stale cache is never used. The name ``"default"`` is the
built-in patient (default parameters), generated on first use.

Every anatomy is replaced atomically (:mod:`anatomy_models.atomic`): listing, loading and saving first
recover what a crashed write left behind, so the old or the new copy is there on the next start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from anatomy_models.atomic import exclusive_lock, recover, recover_folder
from anatomy_models.errors import SpinesimError
from anatomy_models.home import MANIFEST, spinesim_home

if TYPE_CHECKING:  # the Anatomy type (numpy, scipy) is imported by the functions that load one
    from anatomy_models.anatomy import Anatomy
    from anatomy_models.spine import SpineParameters
    from anatomy_models.spine.generator import ProgressCallback

DEFAULT_ANATOMY = "default"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def check_anatomy_name(name: str) -> str:
    if not _NAME.match(name):
        raise SpinesimError(f"invalid anatomy name {name!r}",
                            hint="use up to 64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return name


def anatomy_directory(name: str) -> Path:
    return spinesim_home() / "anatomies" / check_anatomy_name(name)


def save_anatomy(anatomy: Anatomy, name: str) -> Path:
    """Store ``anatomy`` under ``name`` (replacing an older one of that name)."""
    anatomy.metadata["name"] = name
    return anatomy.save(anatomy_directory(name))


def stored_anatomy_names() -> list[str]:
    """Names of the stored anatomies, sorted."""
    root = spinesim_home() / "anatomies"
    if not root.is_dir():
        return []
    recover_folder(root)
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file() and _NAME.match(p.name))


def stored_anatomy_summary(name: str) -> dict:
    """Name, source and size facts of a stored anatomy, read from its manifest only.

    A damaged one is summarised as such (``source`` says so and ``damaged`` holds the full message),
    so that a listing still shows every other anatomy.
    """
    from anatomy_models.anatomy import read_manifest

    try:
        manifest = read_manifest(anatomy_directory(name))
    except SpinesimError as error:
        return {"name": name, "source": "damaged: re-import or delete it", "structures": 0, "landmarks": 0,
                "damaged": str(error)}
    return {
        "name": name,
        "source": str(manifest["metadata"].get("source", "?")),
        "structures": len(manifest["label_table"]),
        "landmarks": len(manifest["landmarks"]),
    }


def generated_anatomy(params: SpineParameters | None = None, *, progress: ProgressCallback | None = None) -> Anatomy:
    """The generated spine for ``params`` (default parameters if None): from the cache, or generated
    and cached under ``<home>/generated/<hash>/``.
    """
    from anatomy_models.spine import SpineParameters, generate_spine

    params = params or SpineParameters()
    directory = spinesim_home() / "generated" / params.cache_key()
    anatomy = _cached(directory)
    if anatomy is None:
        # One process generates a patient; another that asks for it meanwhile (a second workstation
        # starting the same case) waits and loads it, instead of spending the same CPU and memory again.
        with exclusive_lock(directory):
            anatomy = _cached(directory)
            if anatomy is None:
                anatomy = generate_spine(params, progress=progress)
                anatomy.save(directory)
    return anatomy


def _cached(directory: Path) -> Anatomy | None:
    """The generated patient cached in ``directory``, or None if there is none or it is damaged (then it
    is generated again)."""
    from anatomy_models.anatomy import Anatomy

    recover(directory)
    if (directory / MANIFEST).is_file():
        try:
            return Anatomy.load(directory)
        except SpinesimError:
            pass
    return None


def anatomy_folder(name_or_path: str | Path) -> Path | None:
    """The folder :func:`load_anatomy` reads for ``name_or_path`` (None for ``"default"``, which is
    generated on first use), without loading anything.

    Raises
    ------
    SpinesimError
        If there is no such stored anatomy or anatomy folder.
    """
    path = Path(name_or_path)
    recover(path)
    if (path / MANIFEST).is_file():
        return path
    name = str(name_or_path)
    if _NAME.match(name):
        recover(anatomy_directory(name))
        if (anatomy_directory(name) / MANIFEST).is_file():
            return anatomy_directory(name)
    if name == DEFAULT_ANATOMY:
        return None
    known = stored_anatomy_names()
    raise SpinesimError(f"no stored anatomy called {name!r} and no anatomy folder at that path",
                        hint=f"stored anatomies: {', '.join(known)}" if known else
                        "import one with `spinesim anatomy import PATH -o NAME`, generate one with "
                        "`spinesim anatomy generate -o NAME`, or use 'default'")


def load_anatomy(name_or_path: str | Path) -> Anatomy:
    """A stored anatomy by name, an anatomy folder by path, or ``"default"``: the built-in patient."""
    from anatomy_models.anatomy import Anatomy

    folder = anatomy_folder(name_or_path)
    return generated_anatomy() if folder is None else Anatomy.load(folder)
