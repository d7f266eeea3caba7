"""Explore: any layer, view, filter and image of a run's saved models, computed on request.

Modules: ``requests`` (the checked body of ``POST /explore``), ``compute`` (one request on
one model, as a logged step), ``cache`` (results on disk), ``jobs`` (one worker, a bounded
queue), ``routes`` (the plugin's explore routes), ``server`` (``cv.explore``). Importing
this package imports no TensorFlow.
"""
