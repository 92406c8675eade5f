"""Services: the only layer that composes engine, storage, queue, providers and media."""
