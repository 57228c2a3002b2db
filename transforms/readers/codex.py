"""No reader for this family yet: detection skips it."""

from transforms.readers import Reader

READERS: tuple[Reader, ...] = ()
