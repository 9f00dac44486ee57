# Run by the worker right after the page went live: what create_page(autoplay=True) would have done (boot.py) --
# unless the reader's system asks for reduced motion (the loader asked the browser): then the page waits for Train.
if MTL_PLAY is not None:  # noqa: F821 - set by boot.py
    if MTL_PAGE["location"].get("reducedMotion"):  # noqa: F821
        _view.respect_reduced_motion()  # noqa: F821 - boot.py's view of this page
    else:
        MTL_PLAY.running = True  # noqa: F821
