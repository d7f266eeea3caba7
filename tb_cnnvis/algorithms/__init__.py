"""Pure array algorithms: arrays in, float32 NHWC numpy arrays out; no I/O, no rendering.

Modules: ``feature_maps`` (layer outputs), ``cam`` (Grad-CAM, Grad-CAM++, Score-CAM),
``backprop`` (gradient, deconvnet and guided backpropagation projections, Guided Grad-CAM),
``filters`` (filter patterns by activation maximization).

Example:
    >>> from tb_cnnvis.algorithms import cam
    >>> cam.cam_details(model, images, "conv2").maps.shape
    (4, 32, 32)
"""
