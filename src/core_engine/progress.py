"""Progress bars that show where a person is watching and stay silent where nobody is.

:func:`progress_bar` wraps ``tqdm``: a widget bar inside a Jupyter kernel (when ``ipywidgets``
is installed, else the text bar), a text bar on an interactive terminal, and nothing at all
when disabled, when stderr is not a terminal (logs, pipes) or when the ``CI`` environment
variable is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar", "progress_enabled"]

_FALSE_WORDS = ("", "0", "false", "no", "off")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _FALSE_WORDS


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel's ZMQ shell), False in a terminal IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - IPython half-initialised
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_enabled(enabled: bool | None = None) -> bool:
    """Resolve the ``enabled`` argument of :func:`progress_bar`.

    ``True``/``False`` are returned unchanged. ``None`` (automatic) means: off when the ``CI``
    environment variable is set (to anything but ``0``/``false``/``no``/``off``/empty); else
    on inside a Jupyter kernel or when stderr is a terminal; else off.
    """
    if enabled is not None:
        return bool(enabled)
    if _in_ci():
        return False
    return _in_notebook() or _isatty(sys.stderr)


def _bar_class(notebook: bool):
    if notebook:
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
        except ImportError:
            pass
    from tqdm.std import tqdm as text_tqdm

    return text_tqdm


def progress_bar(iterable: Iterable | None = None, total: int | None = None,
                 desc: str | None = None, enabled: bool | None = None, **kwargs: Any):
    """Wrap ``iterable`` in a tqdm progress bar that is silent when nobody watches.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; omit it and call ``.update(n)`` for manual progress.
    total : int, optional
        Number of items, when ``len(iterable)`` does not exist or is not the count.
    desc : str, optional
        Label shown before the bar.
    enabled : bool or None
        ``False``: no output at all; ``True``: always show; ``None`` (default): see
        :func:`progress_enabled` (off in CI and when stderr is not a terminal, on in Jupyter).
    **kwargs
        Passed to ``tqdm`` (``unit``, ``leave``, ``file``, ``mininterval``, ...).

    Returns
    -------
    tqdm.tqdm
        Iterate over it as over ``iterable``. Its ``n`` counts the items seen, also when
        disabled, so callers can report progress uniformly.

    Examples
    --------
    >>> bar = progress_bar(range(3), desc="symbols", enabled=False)
    >>> [x for x in bar], bar.n
    ([0, 1, 2], 3)
    """
    show = progress_enabled(enabled)
    if not show:  # before importing tqdm: a run nobody watches does not pay its import
        return _SilentBar(iterable, total=total, desc=desc)
    cls = _bar_class(_in_notebook())
    kwargs.setdefault("dynamic_ncols", True)
    return cls(iterable, total=total, desc=desc, **kwargs)


class _SilentBar:
    """The disabled bar: the same surface as tqdm (iteration, update, close, n), no output.

    tqdm's own ``disable=True`` skips counting, so ``n`` would stay 0; this one counts.
    """

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str | None) -> None:
        self.iterable = iterable
        self.desc = desc
        self.n = 0
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total
        self.disable = True

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("progress_bar(): nothing to iterate over; pass an iterable.")
        for item in self.iterable:
            self.n += 1
            yield item

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("progress_bar(): the length is unknown; pass total=.")
        return int(self.total)

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Ignored (nothing is shown)."""

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        """Ignored (nothing is shown)."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"progress_bar(disabled, {self.n}/{self.total if self.total is not None else '?'})"
