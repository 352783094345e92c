"""Models as OCI images: a verified production volume packed into a reproducible OCI image layout
(:mod:`.build`), moved to and from any v2 registry (:mod:`.registry`).

Nothing here is imported by ``import smart_model_manager``; the CLI group ``smm image`` loads it lazily.
"""
