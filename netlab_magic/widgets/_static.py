"""What a live widget shows where no widget can be drawn (nbconvert, GitHub, a closed widget):
its ``figure()`` as a PNG and its ``summary()`` as text, in the same output as the live view."""

from __future__ import annotations

import base64
from typing import Any


class StaticViews:
    """Adds the PNG and the text to a widget class that has ``figure()`` and ``summary()``."""

    def figure(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_png_(self) -> bytes | None:
        try:
            from .draw import png

            return png(self.figure())
        except Exception:  # a picture that cannot be drawn leaves the text
            return None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data)
        pic = self._repr_png_()
        if pic:
            data["image/png"] = base64.b64encode(pic).decode("ascii")
        data["text/plain"] = self.summary()
        return data, meta
