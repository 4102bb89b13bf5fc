"""The definitions in force: what the segmenter evaluates, the dispatcher sends and
attribution credits, loaded and validated in one place (:mod:`.catalogue`)."""

from services.catalogue.catalogue import Catalogue, Templates

__all__ = ["Catalogue", "Templates"]
