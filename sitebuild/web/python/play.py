# Run by the worker right after the page went live: what create_page(autoplay=True) would have done (boot.py).
if MTL_PLAY is not None:  # noqa: F821 - set by boot.py
    MTL_PLAY.running = True  # noqa: F821
