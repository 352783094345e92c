"""The source chain of each environment, as a table of factories (docs/design.md, "Source chains").

=========== =====================================
test        mock
dev         cache -> hub (download, fills the cache)
ci          cache -> hub
production  volume (read-only, verified)
hub         cache -> hub
=========== =====================================

Outside ``test`` nothing ever degrades to a mock. A factory takes the :class:`~..settings.Settings` and
returns a :class:`~.base.Source`; sources that pull in heavy or optional dependencies are imported inside
their factory (only ``hub`` brings huggingface_hub). A new source is one new module plus one
:func:`register_source` call (or one entry in :data:`CHAINS`): ``api``, ``pull`` and ``locking`` stay as
they are.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigurationError
from ..settings import CI, DEV, ENVIRONMENTS, HUB, PRODUCTION, TEST, Settings
from .base import Source

SourceFactory = Callable[[Settings], Source]


def mock_source(s: Settings) -> Source:
    from .mock import MockSource

    return MockSource(s.cache_dir, s.volume_dir)


def cache_source(s: Settings) -> Source:
    from .cache import CacheSource

    return CacheSource(s.cache_dir)


def volume_source(s: Settings) -> Source:
    from .volume import VolumeSource

    return VolumeSource(s.volume_dir)


def hub_source(s: Settings) -> Source:
    from .hub import HubSource  # lazily: only the hub source imports huggingface_hub

    return HubSource(s)


CHAINS: dict[str, tuple[SourceFactory, ...]] = {
    TEST: (mock_source,),
    DEV: (cache_source, hub_source),
    CI: (cache_source, hub_source),
    PRODUCTION: (volume_source,),
    HUB: (cache_source, hub_source),
}
#: the sources that download (left out where nothing may be downloaded: ``on_disk_chain``)
DOWNLOADING: set[SourceFactory] = {hub_source}


def build_chain(environment: str, settings: Settings) -> list[Source]:
    """The sources of ``environment``, built from ``settings``, in the order they are asked."""
    try:
        factories = CHAINS[environment]
    except KeyError:
        raise ConfigurationError(f"environment {environment!r} has no source chain; "
                                 f"valid values: {', '.join(ENVIRONMENTS)}") from None
    return [factory(settings) for factory in factories]


def on_disk_chain(environment: str, settings: Settings) -> list[Source]:
    """What is already on this machine for ``environment``: its chain without the sources that download, then
    the volume if the chain does not ask it (the ``real_model_manager`` fixture: real models, no download)."""
    build_chain(environment, settings)  # an unknown environment fails here, with the valid values
    factories = [f for f in CHAINS[environment] if f not in DOWNLOADING]
    if volume_source not in factories:
        factories.append(volume_source)
    return [factory(settings) for factory in factories]


def register_source(environment: str, factory: SourceFactory, *, before: SourceFactory | None = None) -> None:
    """Add ``factory`` to ``environment``'s chain: before ``before`` if given, else last."""
    if environment not in CHAINS:
        raise ConfigurationError(f"environment {environment!r} is not valid; valid values: {', '.join(CHAINS)}")
    chain = list(CHAINS[environment])
    chain.insert(chain.index(before) if before is not None else len(chain), factory)
    CHAINS[environment] = tuple(chain)


__all__ = ["CHAINS", "SourceFactory", "build_chain", "cache_source", "hub_source", "mock_source",
           "register_source", "volume_source"]
